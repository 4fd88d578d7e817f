"""A real Shipway server on port 0, a user with a token, an app, and a git work tree."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hooks.pipeline import AnnounceStage, Stage
from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.server import RunningServer, start
from shipway.settings import Settings
from tests.conftest import run_git


@dataclass
class Platform:
    layout: Layout
    server: RunningServer
    token: str
    email: str

    def remote(self, app: str, token: str | None = None, user: str | None = None) -> str:
        tok = self.token if token is None else token
        who = (user or self.email).replace("@", "%40")
        return f"http://{who}:{tok}@{self.server.host}:{self.server.port}/{app}.git"

    def url(self, app: str) -> str:
        return f"{self.server.url}/{app}.git"


class StageBox:
    """Lets a test swap the pipeline stage of a running server."""

    def __init__(self) -> None:
        self.stage: Stage = AnnounceStage()

    def pre_receive(self, push: Any, out: Any) -> Any:
        return self.stage.pre_receive(push, out)

    def post_receive(self, push: Any, prepared: Any, out: Any) -> None:
        self.stage.post_receive(push, prepared, out)

    def abandon(self, push: Any, prepared: Any) -> None:
        self.stage.abandon(push, prepared)


@pytest.fixture
def stage_box() -> StageBox:
    return StageBox()


@pytest.fixture
def platform(layout: Layout, git_bin: str, stage_box: StageBox) -> Iterator[Platform]:
    settings = Settings(port=0, receive_max_input_size=20 * 1024 * 1024)
    server = start(layout, settings, stage=stage_box)
    _, token = Accounts(layout).create_token("dev@example.com")
    create_app(layout, "demo", "dev@example.com")
    yield Platform(layout=layout, server=server, token=token, email="dev@example.com")
    server.stop()


def make_repo(path: Path, files: dict[str, str] | None = None, message: str = "first") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run_git("init", "-q", "-b", "master", cwd=path)
    for name, text in (files or {"README": "hello\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    run_git("add", "-A", cwd=path)
    run_git("commit", "-q", "-m", message, cwd=path)
    return path


def commit(path: Path, name: str, text: str, message: str) -> str:
    (path / name).write_text(text)
    run_git("add", "-A", cwd=path)
    run_git("commit", "-q", "-m", message, cwd=path)
    return run_git("rev-parse", "HEAD", cwd=path).stdout.strip()


def remote_ref(platform: Platform, app: str, ref: str = "refs/heads/master") -> str | None:
    out = subprocess.run(
        ["git", "--git-dir", str(platform.layout.repo_path(app)), "rev-parse", "--verify", "-q", ref],
        capture_output=True, text=True,
    )
    return out.stdout.strip() or None
