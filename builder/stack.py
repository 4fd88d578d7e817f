"""Stacks: the Debian images every build and dyno runs on, and which Python each serves.

``builder/stack/stacks.toml`` lists the stacks (one Debian suite each) and the Python minor
versions each serves; it is the one place an operator adds a stack or a Python. Every stack has
two images, both cached by the sha256 of their recipe (an image label) and rebuilt only when the
recipe or the CA bundle changes:

* the run image ``shipway/stack:NAME-1``: ``debootstrap --variant=minbase`` of the suite plus
  the stack's run packages, python3.X and python3.X-venv for each Python, the host's CA bundle,
  and ``builder/stack/setup.sh``; dynos run on it;
* the build image ``shipway/stack:NAME-1-build``: the run image plus a compiler, pkg-config,
  the headers, python3.X-dev and the package managers pinned in ``builder/stack/tools.txt``
  (``builder/stack/build-setup.sh`` in a container of the run image, then committed).

Both carry the label ``shipway.stack.pythons`` (``3.14.8 3.15.0``): the exact Pythons inside.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from hooks.pipeline import Output
from shipway.errors import ShipwayError
from shipway.files import locked
from shipway.settings import Settings

RECIPE_LABEL = "shipway.stack.recipe"
PYTHONS_LABEL = "shipway.stack.pythons"
RECIPE_DIR = Path(__file__).parent / "stack"
CATALOG_PATH = RECIPE_DIR / "stacks.toml"
STACK_CA_PATH = "etc/ssl/certs/ca-certificates.crt"
CHUNK = 1 << 20
# a push waiting on a stack build hears from us at least this often (seconds)
KEEPALIVE = 15.0
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
Variant = Literal["run", "build"]


class StackError(ShipwayError):
    """A stack image could not be built."""

    api_id = "stack_failed"
    http_status = 500


@dataclass(frozen=True, slots=True)
class StackSpec:
    """One ``[[stack]]`` of ``builder/stack/stacks.toml``."""

    name: str
    description: str
    suite: str
    pythons: tuple[str, ...]
    run_packages: tuple[str, ...]
    build_packages: tuple[str, ...]
    debootstrap_script: str = ""

    @property
    def image(self) -> str:
        return f"shipway/stack:{self.name}-1"

    @property
    def build_image(self) -> str:
        return self.image + "-build"

    def packages(self, variant: Variant) -> tuple[str, ...]:
        if variant == "run":
            pythons = [f"python{v}{suffix}" for v in self.pythons for suffix in ("", "-venv")]
            return ("bash", "ca-certificates", "curl", "gzip", "procps", "tar", "python3",
                    *pythons, *self.run_packages)
        return (*self.build_packages, *(f"python{v}-dev" for v in self.pythons))


@dataclass(frozen=True, slots=True)
class Catalog:
    """All of ``stacks.toml``: the stacks in order, the default Python, the Debian mirror."""

    default_python: str
    mirror: str
    stacks: tuple[StackSpec, ...]

    def serving(self, minor: str) -> StackSpec | None:
        """The stack that serves Python ``minor`` (``3.13``): the first one listing it."""
        return next((s for s in self.stacks if minor in s.pythons), None)

    @property
    def pythons(self) -> tuple[str, ...]:
        """Every Python minor some stack serves, oldest first."""
        found = {v for s in self.stacks for v in s.pythons}
        return tuple(sorted(found, key=lambda v: tuple(int(p) for p in v.split("."))))

    @property
    def default(self) -> StackSpec:
        """The stack of the default Python; apps that are not Python build on it too."""
        spec = self.serving(self.default_python)
        assert spec is not None, "stacks.toml: no stack serves default_python"
        return spec

    def by_image(self, image: str) -> StackSpec | None:
        return next((s for s in self.stacks if image in (s.image, s.build_image)), None)


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    doc = tomllib.loads(path.read_text("utf-8"))
    stacks = tuple(
        StackSpec(name=s["name"], description=s.get("description", f"Debian {s['suite']}"),
                  suite=s["suite"], pythons=tuple(s["pythons"]),
                  run_packages=tuple(s.get("run_packages", ())),
                  build_packages=tuple(s.get("build_packages", ())),
                  debootstrap_script=s.get("debootstrap_script", ""))
        for s in doc["stack"]
    )
    return Catalog(doc["default_python"], doc["mirror"], stacks)


CATALOG = load_catalog()
STACK_NAME = CATALOG.default.image


@dataclass(frozen=True, slots=True)
class Recipe:
    """What one image of a stack is built from; its digest is the image's label."""

    spec: StackSpec
    variant: Variant
    mirror: str
    script: str
    ca_bundle: Path
    ca_digest: str
    tools: str = ""

    @property
    def packages(self) -> tuple[str, ...]:
        return self.spec.packages(self.variant)

    @property
    def image(self) -> str:
        return self.spec.image if self.variant == "run" else self.spec.build_image

    @property
    def digest(self) -> str:
        text = "\n".join(
            ["suite=" + self.spec.suite, "mirror=" + self.mirror,
             "debootstrap=" + self.spec.debootstrap_script,
             "run=" + ",".join(self.spec.packages("run")), "ca=" + self.ca_digest,
             "env=" + ",".join(f"{k}={v}" for k, v in sorted(ENV.items())),
             (RECIPE_DIR / "setup.sh").read_text("utf-8")]
        )
        if self.variant == "build":
            text += "\n".join(["", "build=" + ",".join(self.packages), self.tools, self.script])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_recipe(ca_bundle: str | Path, spec: StackSpec | None = None,
                variant: Variant = "run") -> Recipe:
    ca = Path(ca_bundle)
    try:
        ca_bytes = ca.read_bytes()
    except OSError as exc:
        raise StackError(f"Cannot read the CA bundle {ca}: {exc.strerror}.",
                         hint="Set stack.ca_bundle in shipway.toml or pass --ca-bundle.") from None
    script = (RECIPE_DIR / ("setup.sh" if variant == "run" else "build-setup.sh")).read_text("utf-8")
    tools = (RECIPE_DIR / "tools.txt").read_text("utf-8") if variant == "build" else ""
    return Recipe(spec or CATALOG.default, variant, CATALOG.mirror, script, ca,
                  hashlib.sha256(ca_bytes).hexdigest(), tools)


def stack_for(settings: Settings, app_stack: str = "") -> str:
    """The image an app builds on: its own ``stack`` field, else settings, else Shipway's."""
    return app_stack or settings.stack_image or STACK_NAME


def describe(image: str) -> str:
    spec = CATALOG.by_image(image)
    return spec.description if spec is not None else image


def ensure_stack(settings: Settings, *, docker: Any, out: Output, image: str = "",
                 ca_bundle: str | None = None, spec: StackSpec | None = None,
                 variant: Variant = "run") -> str:
    """Return an image reference for ``docker run``; builds Shipway's stack images when needed.

    ``image`` (an app's own stack) or ``settings.stack_image`` is used as is, never built.
    ``spec`` defaults to the default Python's stack; the build variant needs the run one.
    """
    chosen = image or settings.stack_image
    if chosen:
        return chosen
    spec = spec or CATALOG.default
    bundle = ca_bundle or settings.stack_ca_bundle
    if variant == "build":
        ensure_stack(settings, docker=docker, out=out, ca_bundle=bundle, spec=spec)
    recipe = read_recipe(bundle, spec, variant)
    name = recipe.image
    if _current_label(docker, name) == recipe.digest:
        return name
    # one build at a time per host: a second pusher waits, then finds the image ready
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    with locked(Path(tempfile.gettempdir()) / f"shipway-stack-{digest}.lock"):
        if _current_label(docker, name) == recipe.digest:
            return name
        what = "stack image" if variant == "run" else "build image"
        out.line(f"-----> Building {what} {name} (first run, a few minutes)")
        started = time.monotonic()
        with KeepAlive(out, f"still building {name}") as alive:
            if variant == "run":
                build_stack(recipe, docker=docker, out=alive)
            else:
                build_build_image(recipe, docker=docker, out=alive)
        out.line(f"-----> {what.capitalize()} {name} ready "
                 f"({time.monotonic() - started:.0f}s)")
    return name


def launch_stack(settings: Settings, slug_stack: str, *, docker: Any, out: Output,
                 app_stack: str = "") -> str:
    """The image a slug's dynos run on: the run image of the stack it was built on."""
    spec = CATALOG.by_image(slug_stack)
    if spec is not None:
        return ensure_stack(settings.with_overrides(stack_image=""), docker=docker, out=out,
                            spec=spec)
    return ensure_stack(settings, docker=docker, out=out, image=slug_stack or app_stack)


def python_versions(docker: Any, image: str) -> dict[str, str]:
    """The exact Pythons an image of Shipway's has, by minor: ``{"3.14": "3.14.8"}``."""
    found = docker.images.get(image)
    labels = (found.attrs.get("Config") or {}).get("Labels") or {}
    exact = str(labels.get(PYTHONS_LABEL, "")).split()
    return {v.rsplit(".", 1)[0]: v for v in exact}


class KeepAlive:
    """An Output that also says it is alive every KEEPALIVE seconds of silence.

    A push waiting for a first stack build would otherwise hear nothing for minutes.
    """

    def __init__(self, out: Output, doing: str, every: float = KEEPALIVE) -> None:
        self.out, self.doing, self.every = out, doing, every
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last = self._started = time.monotonic()
        self._thread = threading.Thread(target=self._tick, name="stack-keepalive", daemon=True)

    def __enter__(self) -> KeepAlive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            if time.monotonic() - self._last >= self.every:
                self.line(f"       ... {self.doing} ({time.monotonic() - self._started:.0f}s)")

    def line(self, text: str) -> None:
        with self._lock:
            self._last = time.monotonic()
            self.out.line(text)

    def error(self, text: str) -> None:
        with self._lock:
            self._last = time.monotonic()
            self.out.error(text)


def _current_label(docker: Any, name: str) -> str | None:
    import docker as docker_sdk

    try:
        found = docker.images.get(name)
    except docker_sdk.errors.ImageNotFound:
        return None
    labels = (found.attrs.get("Config") or {}).get("Labels") or {}
    label = labels.get(RECIPE_LABEL)
    return str(label) if label else None


def build_stack(recipe: Recipe, *, docker: Any, out: Output) -> None:
    """debootstrap a rootfs in a temp dir, run the setup script in it, import it into Docker."""
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise StackError("debootstrap is not installed; it builds the stack image.",
                         hint="Run scripts/host-setup as root (or set stack.image).")
    spec = recipe.spec
    argv = [debootstrap, "--variant=minbase", "--include=" + ",".join(recipe.packages),
            spec.suite]
    with tempfile.TemporaryDirectory(prefix="shipway-stack-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        argv += [str(rootfs), recipe.mirror]
        if spec.debootstrap_script:
            argv.append(str(Path(debootstrap).parents[1] / "share" / "debootstrap" / "scripts"
                            / spec.debootstrap_script))
        out.line(f"       debootstrap {spec.suite} from {recipe.mirror}")
        _run(argv, out=out, what="debootstrap")
        shutil.copyfile(recipe.ca_bundle, rootfs / STACK_CA_PATH)
        out.line("       Running the stack setup script")
        shown: list[str] = []
        _run(["chroot", str(rootfs), "/bin/bash", "-s", "--", *spec.pythons], out=out,
             what="the stack setup script", stdin=recipe.script, show_all=True, keep=shown)
        exact = [line.split()[1] for line in shown if line.startswith("python ")]
        out.line(f"       Importing into Docker as {recipe.image}")
        _import(rootfs, recipe, docker=docker, pythons=" ".join(exact))


def build_build_image(recipe: Recipe, *, docker: Any, out: Output) -> None:
    """Add the build packages and tools to a container of the run image; commit it."""
    argv = ["/bin/bash", "/tmp/build-setup.sh", *recipe.packages]
    box = docker.containers.create(recipe.spec.image, argv, user="root",
                                   labels={"shipway.role": "stack-build"},
                                   network_mode="bridge", detach=True)
    try:
        files = io.BytesIO()
        with tarfile.open(fileobj=files, mode="w") as tar:
            for name, text in (("build-setup.sh", recipe.script), ("tools.txt", recipe.tools)):
                data = text.encode("utf-8")
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
        box.put_archive("/tmp", files.getvalue())
        stream = box.attach(stdout=True, stderr=True, stream=True, logs=False)
        box.start()
        tail: list[str] = []
        from builder.container import split_lines

        for text in split_lines(stream):
            tail = (tail + [text])[-20:]
            out.line("       " + text)
        code = int(box.wait().get("StatusCode", -1))
        if code != 0:
            raise StackError(f"Building the stack failed: build-setup.sh exited with status {code}.")
        repository, _, tag = recipe.image.rpartition(":")
        out.line(f"       Committing {recipe.image}")
        box.commit(repository=repository, tag=tag,
                   changes=[f"LABEL {RECIPE_LABEL}={recipe.digest}", "USER root",
                            'CMD ["/bin/bash"]'])
    finally:
        box.remove(force=True)
    if _current_label(docker, recipe.image) != recipe.digest:
        raise StackError(f"Building the stack failed: Docker did not tag {recipe.image}.")


def _run(argv: list[str], *, out: Output, what: str, stdin: str | None = None,
         show_all: bool = False, keep: list[str] | None = None) -> None:
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
        if keep is not None:
            keep.append(text)
        if show_all or text.startswith(MILESTONES):
            out.line("       " + text)
    code = proc.wait()
    if code != 0:
        for text in tail:
            out.line("       " + text)
        raise StackError(f"Building the stack failed: {what} exited with status {code}.")


def _import(rootfs: Path, recipe: Recipe, *, docker: Any, pythons: str) -> None:
    name = recipe.image
    repository, _, tag = name.rpartition(":")
    if not repository:
        repository, tag = name, "latest"
    changes = [f"LABEL {RECIPE_LABEL}={recipe.digest}", f'LABEL {PYTHONS_LABEL}="{pythons}"',
               "WORKDIR /app", 'CMD ["/bin/bash"]']
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
