"""The builder: source tree -> buildpacks in a container -> slug (the pre-receive stage)."""
