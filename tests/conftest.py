"""Fixtures shared by every layer: an isolated data home, real git, real Docker.

Under CI=true a test that needs git or Docker fails when they are missing; elsewhere it skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipway.layout import Layout

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(what: str, ok: bool) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is missing")
    pytest.skip(f"{what} is not available")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point data homes at tmp_path and strip ambient GIT_* variables."""
    for key in list(os.environ):
        if key.startswith("GIT_") or key == "SHIPWAY_HOME":
            monkeypatch.delenv(key, raising=False)
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Dev")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "dev@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Dev")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "dev@example.com")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    home = Layout.at(tmp_path / "home")
    home.ensure()
    return home


@pytest.fixture(scope="session")
def git_bin() -> str:
    path = shutil.which("git")
    require("git", path is not None)
    assert path is not None
    return path


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception:  # noqa: BLE001 - any failure means no usable engine
        require("a Docker engine", False)
        raise
    yield client
    client.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers that must print their own URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_git(*args: str, cwd: Path, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run the real git client; returns stdout/stderr as text (stderr carries remote: lines)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=check, capture_output=True, text=True, **kw
    )
