"""The stack: the base image every build and dyno runs on.

Shipway's own stack is Debian bookworm from ``debootstrap --variant=minbase`` plus the packages in
``builder/stack/bookworm.packages`` and the script ``builder/stack/bookworm-setup.sh``; the
host's CA bundle is copied in so pip reaches PyPI through TLS-intercepting networks. The image is
tagged ``shipway/stack:bookworm-1`` and labelled with the sha256 of that recipe: it is reused
while the label matches and rebuilt when the recipe (or the CA bundle) changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hooks.pipeline import Output
from shipway.errors import ShipwayError
from shipway.files import locked
from shipway.settings import Settings

STACK_NAME = "shipway/stack:bookworm-1"
STACK_DESCRIPTION = "Debian bookworm"
RECIPE_LABEL = "shipway.stack.recipe"
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
RECIPE_DIR = Path(__file__).parent / "stack"
STACK_CA_PATH = "etc/ssl/certs/ca-certificates.crt"
CHUNK = 1 << 20
# debootstrap prints hundreds of lines; these mark the milestones worth showing
MILESTONES = ("I: Retrieving Release", "I: Installing core packages",
              "I: Configuring the base system", "I: Base system installed")
ENV = {
    "LANG": "C.UTF-8",
    "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "HOME": "/app",
}


class StackError(ShipwayError):
    """The stack image could not be built."""

    api_id = "stack_failed"
    http_status = 500


@dataclass(frozen=True, slots=True)
class Recipe:
    """What a stack image is built from: ``builder/stack/`` files plus the CA bundle."""

    packages: tuple[str, ...]
    script: str
    ca_bundle: Path
    ca_digest: str

    @property
    def digest(self) -> str:
        text = "\n".join(
            ["suite=" + SUITE, "packages=" + ",".join(self.packages), "ca=" + self.ca_digest,
             "env=" + ",".join(f"{k}={v}" for k, v in sorted(ENV.items())), self.script]
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_recipe(ca_bundle: str | Path) -> Recipe:
    ca = Path(ca_bundle)
    try:
        ca_bytes = ca.read_bytes()
    except OSError as exc:
        raise StackError(f"Cannot read the CA bundle {ca}: {exc.strerror}.",
                         hint="Set stack.ca_bundle in shipway.toml or pass --ca-bundle.") from None
    packages = tuple(
        line.strip() for line in (RECIPE_DIR / "bookworm.packages").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    script = (RECIPE_DIR / "bookworm-setup.sh").read_text("utf-8")
    return Recipe(packages, script, ca, hashlib.sha256(ca_bytes).hexdigest())


def stack_for(settings: Settings, app_stack: str = "") -> str:
    """The image an app builds on: its own ``stack`` field, else settings, else Shipway's."""
    return app_stack or settings.stack_image or STACK_NAME


def describe(image: str) -> str:
    return STACK_DESCRIPTION if image == STACK_NAME else image


def ensure_stack(settings: Settings, *, docker: Any, out: Output, image: str = "",
                 ca_bundle: str | None = None, name: str = STACK_NAME) -> str:
    """Return an image reference for ``docker run``; builds Shipway's stack when needed.

    ``image`` (an app's own stack) or ``settings.stack_image`` is used as is, never built.
    """
    chosen = image or settings.stack_image
    if chosen:
        return chosen
    recipe = read_recipe(ca_bundle or settings.stack_ca_bundle)
    if _current_label(docker, name) == recipe.digest:
        return name
    # one build at a time per host: a second pusher waits, then finds the image ready
    lock = Path(tempfile.gettempdir()) / f"shipway-stack-{hashlib.sha256(name.encode()).hexdigest()[:12]}.lock"
    with locked(lock):
        if _current_label(docker, name) == recipe.digest:
            return name
        out.line(f"-----> Building stack image {name} (first run, a few minutes)")
        build_stack(recipe, docker=docker, out=out, name=name)
        out.line(f"-----> Stack image {name} ready")
    return name


def _current_label(docker: Any, name: str) -> str | None:
    import docker as docker_sdk

    try:
        found = docker.images.get(name)
    except docker_sdk.errors.ImageNotFound:
        return None
    labels = (found.attrs.get("Config") or {}).get("Labels") or {}
    label = labels.get(RECIPE_LABEL)
    return str(label) if label else None


def build_stack(recipe: Recipe, *, docker: Any, out: Output, name: str = STACK_NAME) -> None:
    """debootstrap a rootfs in a temp dir, run the setup script in it, import it into Docker."""
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise StackError("debootstrap is not installed; it builds the stack image.",
                         hint="Run scripts/host-setup as root (or set stack.image).")
    with tempfile.TemporaryDirectory(prefix="shipway-stack-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        out.line(f"       debootstrap {SUITE} from {MIRROR}")
        _run([debootstrap, "--variant=minbase", "--include=" + ",".join(recipe.packages),
              SUITE, str(rootfs), MIRROR], out=out, what="debootstrap")
        shutil.copyfile(recipe.ca_bundle, rootfs / STACK_CA_PATH)
        out.line("       Running the stack setup script")
        _run(["chroot", str(rootfs), "/bin/bash", "-s"], out=out, what="the stack setup script",
             stdin=recipe.script, show_all=True)
        out.line(f"       Importing into Docker as {name}")
        _import(rootfs, recipe, docker=docker, name=name)


def _run(argv: list[str], *, out: Output, what: str, stdin: str | None = None,
         show_all: bool = False) -> None:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                            errors="replace")
    assert proc.stdout is not None
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    tail: list[str] = []
    for raw in proc.stdout:
        text = raw.rstrip("\n")
        tail = (tail + [text])[-20:]
        if show_all or text.startswith(MILESTONES):
            out.line("       " + text)
    code = proc.wait()
    if code != 0:
        for text in tail:
            out.line("       " + text)
        raise StackError(f"Building the stack failed: {what} exited with status {code}.")


def _import(rootfs: Path, recipe: Recipe, *, docker: Any, name: str) -> None:
    repository, _, tag = name.rpartition(":")
    if not repository:
        repository, tag = name, "latest"
    changes = [f"LABEL {RECIPE_LABEL}={recipe.digest}", "WORKDIR /app", 'CMD ["/bin/bash"]']
    changes += [f"ENV {key}={value}" for key, value in ENV.items()]
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", "-",
         "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./dev/*", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert tar.stdout is not None
    try:
        docker.api.import_image_from_stream(_chunks(tar.stdout), repository=repository, tag=tag,
                                            changes=changes)
    finally:
        tar.stdout.close()
        err = tar.stderr.read().decode("utf-8", "replace") if tar.stderr else ""
        code = tar.wait()
    if code != 0:
        raise StackError(f"Building the stack failed: tar exited with status {code}: {err.strip()}")
    if _current_label(docker, name) != recipe.digest:
        raise StackError(f"Building the stack failed: Docker did not tag {name}.")


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk
