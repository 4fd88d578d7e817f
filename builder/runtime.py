"""The runtime a push builds on: which stack images, and for a Python app which exact Python.

Decided on the host from the pushed tree's root files, before any container starts, so a
refusal (another language, an unavailable Python, two lock files) costs no container and is one
line. ``choose_runtime`` builds the chosen stack's images on first need (with progress).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from builder.python_project import PythonProject, is_python, read_project
from builder.source import read_root_file
from builder.stack import CATALOG, Catalog, describe, ensure_stack, python_versions
from hooks.pipeline import Output
from shipway.accounts import App
from shipway.errors import BuildFailed
from shipway.settings import Settings

# root files that say "another language" (Heroku's buildpack for it would take the app)
OTHER_LANGUAGES = (
    ("package.json", "Node.js"),
    ("Gemfile", "Ruby"),
    ("go.mod", "Go"),
    ("pom.xml", "Java"),
    ("build.gradle", "Java"),
    ("composer.json", "PHP"),
    ("Cargo.toml", "Rust"),
)
SUPPORTED = "Shipway builds Python apps, static sites (index.html) and apps with a Procfile"


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one build runs on; ``run_image`` is what its slug's dynos run on."""

    build_image: str
    run_image: str
    description: str
    python: str = ""  # exact version, "3.14.8"; "" for other apps or a custom stack image
    environment: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``Python 3.14.8`` (what releases:info shows), or ``""``."""
        return f"Python {self.python}" if self.python else ""


def choose_runtime(objects: Any, tree: Any, *, app: App, settings: Settings, docker: Any,
                   out: Output, catalog: Catalog = CATALOG) -> Runtime:
    """The stack (and Python) for this tree; raises BuildFailed with the pusher's line."""
    def read(name: str) -> bytes | None:
        return read_root_file(objects, tree, name)

    custom = app.stack or settings.stack_image
    if app.buildpack or not is_python(read):
        if not app.buildpack:
            refuse_other_language(read)
        if custom:
            return Runtime(custom, custom, custom)
        spec = catalog.default
        build = ensure_stack(settings, docker=docker, out=out, spec=spec, variant="build")
        return Runtime(build, spec.image, spec.description)
    project = read_project(read)
    environment: dict[str, str] = {"SHIPWAY_PACKAGE_MANAGER": project.manager}
    notes = tuple(" !     " + w for w in project.warnings)
    if custom:
        # an operator's own image: its python3 is what the app gets
        return Runtime(custom, custom, custom, environment=environment, notes=notes)
    return _python_runtime(project, settings=settings, docker=docker, out=out, catalog=catalog,
                           environment=environment, notes=notes)


def _python_runtime(project: PythonProject, *, settings: Settings, docker: Any, out: Output,
                    catalog: Catalog, environment: dict[str, str],
                    notes: tuple[str, ...]) -> Runtime:
    request = project.request
    minor = request.minor if request else catalog.default_python
    spec = catalog.serving(minor)
    if spec is None:
        assert request is not None  # the default Python always has a stack
        available = ", ".join(catalog.pythons)
        raise BuildFailed(f"Push rejected: Python {request.version} (from {request.source}) is "
                          f"not available; this server has Python {available}. Change "
                          f"{request.source} to one of them.")
    build = ensure_stack(settings, docker=docker, out=out, spec=spec, variant="build")
    exact = python_versions(docker, build).get(minor)
    if exact is None:
        raise BuildFailed(f"Push rejected: the {spec.description} stack image has no Python "
                          f"{minor}.", hint="Rebuild it: shipway stacks:build.")
    if request is None:
        origin = f"the default; pin it with: echo {minor} > .python-version"
    else:
        origin = f"from {request.source}"
        if request.patch_pinned and request.version != exact:
            notes += (f"       Python {request.version} was requested; Shipway serves the "
                      f"{minor} patch that {spec.description} ships: {exact}",)
    environment = {**environment, "SHIPWAY_PYTHON": f"python{minor}",
                   "SHIPWAY_PYTHON_VERSION": exact, "SHIPWAY_PYTHON_ORIGIN": origin}
    return Runtime(build, spec.image, describe(spec.image), exact, environment, notes)


def refuse_other_language(read: Any) -> None:
    """Another language's app would only fail at boot here: say so at push time."""
    for name, language in OTHER_LANGUAGES:
        if read(name) is not None:
            raise BuildFailed(f"Push rejected: this is a {language} app ({name}), which Shipway "
                              f"cannot build; {SUPPORTED}.")
