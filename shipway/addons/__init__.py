"""Add-ons: backing services attached to an app, whose config vars are part of its releases.

A provider is a small class registered under the ``shipway.addons`` entry point group (see
``pyproject.toml``), so an operator can add one without touching Shipway::

    class Provider(Protocol):
        name: str
        def provision(self, app, plan, options) -> Provisioned
        def deprovision(self, resource) -> None
        def info(self, resource) -> dict[str, str]

Attachments are kept in ``apps/NAME/addons.toml`` (written atomically by ``store.py``).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from shipway.addons.records import AddonError, Provider, Provisioned
from shipway.errors import NotFound
from shipway.settings import Settings

ENTRY_POINT_GROUP = "shipway.addons"


def load_provider(name: str, settings: Settings) -> Provider:
    """The provider registered as ``name``, built with the server settings."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: Any = ep.load()
            provider: Provider = factory(settings)
            return provider
    known = ", ".join(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))
    raise NotFound(f"Unknown add-on provider {name!r}. Available: {known or 'none'}.")


__all__ = ["AddonError", "Provider", "Provisioned", "load_provider"]
