"""What a pushed Python project asks for, read from its root files before any container starts.

Heroku's Python buildpack is the reference: exactly one package manager file (``requirements.txt``,
``Pipfile.lock``, ``poetry.lock``, ``uv.lock``); the Python version from ``runtime.txt``
(deprecated), else ``.python-version``, else ``Pipfile.lock``; uv projects must have a
``.python-version``. Every refusal is a ``BuildFailed`` whose message is the pusher's one line.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shipway.errors import BuildFailed

ReadFile = Callable[[str], bytes | None]
Manager = Literal["pip", "pipenv", "poetry", "uv", "pyproject", "none"]
# the files that make an app a Python app; bin/detect of the Python buildpack reads the same list
DETECT_FILES = tuple(
    line.strip()
    for line in (Path(__file__).parent / "buildpacks" / "python" / "detect-files")
    .read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)
LOCK_FILES: tuple[tuple[str, Manager, str], ...] = (
    ("requirements.txt", "pip", "pip"),
    ("Pipfile.lock", "pipenv", "Pipenv"),
    ("poetry.lock", "poetry", "Poetry"),
    ("uv.lock", "uv", "uv"),
)
VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class PythonRequest:
    """The Python an app asks for: ``3.13`` or ``3.13.2``, and the file that says so."""

    version: str
    source: str  # "runtime.txt", ".python-version", "Pipfile.lock"; "" = nothing asked

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def patch_pinned(self) -> bool:
        return self.version.count(".") == 2


@dataclass(frozen=True, slots=True)
class PythonProject:
    """A Python app's package manager and requested Python (what the build is told)."""

    manager: Manager
    request: PythonRequest | None
    warnings: tuple[str, ...] = ()


def is_python(read: ReadFile) -> bool:
    return any(read(name) is not None for name in DETECT_FILES)


def read_project(read: ReadFile) -> PythonProject:
    manager = package_manager(read)
    warnings: list[str] = []
    request = python_request(read)
    if request is not None and request.source == "runtime.txt":
        warnings.append(f"Warning: runtime.txt is deprecated; put {request.version} in a "
                        ".python-version file instead (and delete runtime.txt).")
    if manager == "uv" and read(".python-version") is None:
        raise BuildFailed("Push rejected: uv projects must say their Python in a .python-version "
                          "file (echo 3.14 > .python-version, then commit it).")
    return PythonProject(manager, request, tuple(warnings))


def package_manager(read: ReadFile) -> Manager:
    found = [(name, manager, label) for name, manager, label in LOCK_FILES
             if read(name) is not None]
    if len(found) > 1:
        names = ", ".join(f"{name} ({label})" for name, _, label in found)
        raise BuildFailed(f"Push rejected: multiple Python package manager files were found: "
                          f"{names}; keep exactly one.")
    if found:
        return found[0][1]
    if read("Pipfile") is not None:
        raise BuildFailed("Push rejected: a Pipfile was found but no Pipfile.lock; run "
                          "`pipenv lock` and commit Pipfile.lock.")
    pyproject = _pyproject(read)
    if "poetry" in pyproject.get("tool", {}):
        raise BuildFailed("Push rejected: pyproject.toml is a Poetry project but there is no "
                          "poetry.lock; run `poetry lock` and commit poetry.lock.")
    if pyproject.get("project", {}).get("dependencies"):
        return "pyproject"
    return "none"


def python_request(read: ReadFile) -> PythonRequest | None:
    """runtime.txt > .python-version > Pipfile.lock, as Heroku orders them."""
    runtime = read("runtime.txt")
    if runtime is not None:
        text = _first_line(runtime.decode("utf-8", "replace"))
        version = text.removeprefix("python-")
        if not text.startswith("python-") or not VERSION.fullmatch(version):
            raise BuildFailed(f"Push rejected: runtime.txt says {text!r}, not a Python version "
                              "like python-3.14.")
        return PythonRequest(version, "runtime.txt")
    pinned = read(".python-version")
    if pinned is not None:
        text = _first_line(pinned.decode("utf-8", "replace"))
        if not VERSION.fullmatch(text):
            raise BuildFailed(f"Push rejected: .python-version says {text!r}, not a Python "
                              "version like 3.14.")
        return PythonRequest(text, ".python-version")
    lock = read("Pipfile.lock")
    if lock is not None:
        try:
            requires = json.loads(lock).get("_meta", {}).get("requires", {})
        except (ValueError, AttributeError):
            raise BuildFailed("Push rejected: Pipfile.lock is not valid JSON; run "
                              "`pipenv lock` and commit it.") from None
        version = str(requires.get("python_full_version") or requires.get("python_version") or "")
        if version and VERSION.fullmatch(version):
            return PythonRequest(version, "Pipfile.lock")
    return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return ""


def _pyproject(read: ReadFile) -> dict[str, Any]:
    data = read("pyproject.toml")
    if data is None:
        return {}
    try:
        return tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError as exc:
        raise BuildFailed(f"Push rejected: pyproject.toml is not valid TOML ({exc}).") from None
