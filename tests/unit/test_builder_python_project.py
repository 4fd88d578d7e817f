"""What a Python project asks for, and the one line a pusher reads when Shipway refuses it."""

from __future__ import annotations

import json

import pytest

from builder.python_project import PythonRequest, is_python, python_request, read_project
from shipway.errors import BuildFailed


def test_version_precedence_is_runtime_txt_then_python_version_then_pipfile_lock() -> None:
    lock = json.dumps({"_meta": {"requires": {"python_version": "3.13"}}})
    every = {"runtime.txt": "python-3.11\n", ".python-version": "3.15\n", "Pipfile.lock": lock}
    assert python_request({k: v.encode() for k, v in every.items()}.get) == \
        PythonRequest("3.11", "runtime.txt")
    del every["runtime.txt"]
    assert python_request({k: v.encode() for k, v in every.items()}.get) == \
        PythonRequest("3.15", ".python-version")
    del every[".python-version"]
    assert python_request({k: v.encode() for k, v in every.items()}.get) == \
        PythonRequest("3.13", "Pipfile.lock")
    full = json.dumps({"_meta": {"requires": {"python_version": "3.13",
                                              "python_full_version": "3.13.2"}}})
    assert python_request({"Pipfile.lock": full.encode()}.get) == \
        PythonRequest("3.13.2", "Pipfile.lock")
    assert python_request({}.get) is None


def test_python_version_file_may_have_comments_and_a_patch() -> None:
    request = python_request({".python-version": b"# pinned for prod\n\n3.13.2\n"}.get)
    assert request == PythonRequest("3.13.2", ".python-version")
    assert request is not None and request.minor == "3.13" and request.patch_pinned


def test_runtime_txt_works_and_says_it_is_deprecated() -> None:
    project = read_project({"runtime.txt": b"python-3.13\n", "requirements.txt": b""}.get)
    assert project.request == PythonRequest("3.13", "runtime.txt")
    assert project.warnings == ("Warning: runtime.txt is deprecated; put 3.13 in a "
                                ".python-version file instead (and delete runtime.txt).",)


@pytest.mark.parametrize(("name", "text", "line"), [
    (".python-version", "python3.13", "Push rejected: .python-version says 'python3.13', "
     "not a Python version like 3.14."),
    ("runtime.txt", "3.13", "Push rejected: runtime.txt says '3.13', not a Python version "
     "like python-3.14."),
])
def test_a_version_that_is_not_one_is_refused(name: str, text: str, line: str) -> None:
    with pytest.raises(BuildFailed) as caught:
        read_project({name: text.encode()}.get)
    assert caught.value.message == line


@pytest.mark.parametrize(("present", "manager"), [
    ({"requirements.txt": "six\n"}, "pip"),
    ({"Pipfile": "", "Pipfile.lock": "{}"}, "pipenv"),
    ({"pyproject.toml": "[tool.poetry]\npackage-mode = false\n", "poetry.lock": ""}, "poetry"),
    ({"pyproject.toml": "[project]\nname='x'\n", "uv.lock": "", ".python-version": "3.14"},
     "uv"),
    ({"pyproject.toml": "[project]\ndependencies = ['six']\n"}, "pyproject"),
    ({"pyproject.toml": "[project]\nname = 'x'\n"}, "none"),
    ({".python-version": "3.14"}, "none"),
])
def test_exactly_one_package_manager(present: dict[str, str], manager: str) -> None:
    read = {k: v.encode() for k, v in present.items()}.get
    assert is_python(read)
    assert read_project(read).manager == manager


@pytest.mark.parametrize(("present", "line"), [
    ({"requirements.txt": "", "Pipfile.lock": "{}", "Pipfile": ""},
     "Push rejected: multiple Python package manager files were found: requirements.txt (pip), "
     "Pipfile.lock (Pipenv); keep exactly one."),
    ({"poetry.lock": "", "uv.lock": "", "pyproject.toml": ""},
     "Push rejected: multiple Python package manager files were found: poetry.lock (Poetry), "
     "uv.lock (uv); keep exactly one."),
    ({"Pipfile": "[packages]\n"},
     "Push rejected: a Pipfile was found but no Pipfile.lock; run `pipenv lock` and commit "
     "Pipfile.lock."),
    ({"pyproject.toml": "[tool.poetry]\nname = 'x'\n"},
     "Push rejected: pyproject.toml is a Poetry project but there is no poetry.lock; run "
     "`poetry lock` and commit poetry.lock."),
    ({"pyproject.toml": "[project]\nname = 'x'\n", "uv.lock": ""},
     "Push rejected: uv projects must say their Python in a .python-version file "
     "(echo 3.14 > .python-version, then commit it)."),
])
def test_refusals_are_one_line(present: dict[str, str], line: str) -> None:
    with pytest.raises(BuildFailed) as caught:
        read_project({k: v.encode() for k, v in present.items()}.get)
    assert caught.value.message == line


def test_procfile_or_static_apps_are_not_python() -> None:
    assert not is_python({"Procfile": b"web: ./serve", "app.py": b""}.get)
