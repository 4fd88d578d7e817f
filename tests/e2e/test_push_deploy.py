"""``git push platform master`` end to end: build, release, launch, and HTTP through the router."""

from __future__ import annotations

import http.client
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from release.store import ReleaseStore
from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.server import RunningServer, start_platform
from shipway.settings import Settings
from tests.conftest import free_port, run_git

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
APP = "hello"


@dataclass
class Live:
    layout: Layout
    server: RunningServer
    settings: Settings
    token: str

    def remote(self, app: str = APP) -> str:
        return f"http://dev%40example.com:{self.token}@127.0.0.1:{self.server.port}/{app}.git"

    def get(self, app: str = APP) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.settings.router_port, timeout=10)
        try:
            conn.request("GET", "/", headers={"Host": f"{app}.localhost"})
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()


@pytest.fixture
def live(layout: Layout, docker_client: Any, stack_image: str, git_bin: str) -> Iterator[Live]:
    settings = Settings(port=0, router_port=free_port(), launch_boot_timeout=30.0,
                        launch_stop_grace=2.0)
    server = start_platform(layout, settings)
    _, token = Accounts(layout).create_token("dev@example.com")
    create_app(layout, APP, "dev@example.com")
    yield Live(layout, server, settings, token)
    server.stop()
    for c in docker_client.containers.list(all=True, filters={"label": f"shipway.app={APP}"}):
        c.remove(force=True)


def work_tree(tmp_path: Path, example: str) -> Path:
    work = tmp_path / example
    shutil.copytree(EXAMPLES / example, work)
    run_git("init", "-q", "-b", "master", cwd=work)
    run_git("add", "-A", cwd=work)
    run_git("commit", "-q", "-m", f"{example} example", cwd=work)
    return work


def test_push_builds_releases_and_serves(live: Live, tmp_path: Path) -> None:
    work = work_tree(tmp_path, "python-plain")
    run_git("remote", "add", "platform", live.remote(), cwd=work)
    pushed = run_git("push", "platform", "master", cwd=work, check=False)
    err = pushed.stderr
    assert pushed.returncode == 0, err
    assert "remote: -----> Building on the Debian forky stack" in err
    assert "remote: -----> Discovering process types" in err
    assert "remote: -----> Compressing... done" in err
    assert "remote: -----> Launching... done, v2" in err
    assert f"remote:        http://{APP}.localhost:{live.settings.router_port}/ deployed to Shipway" in err
    status, body = live.get()
    assert status == 200 and "python-plain example: Hello (release v2)" in body
    head = run_git("rev-parse", "HEAD", cwd=work).stdout.strip()
    v2 = ReleaseStore(live.layout).get(APP, 2)
    assert (v2.status, v2.commit, v2.description, v2.user) == (
        "succeeded", head, f"Deploy {head[:7]}", "dev@example.com")
    assert v2.commit_description == "python-plain example"

    # a push whose build fails is rejected; the branch and the running release stay
    (work / "Procfile").write_text("this line is not a process\n")
    run_git("commit", "-qam", "break the Procfile", cwd=work)
    broken = run_git("push", "platform", "master", cwd=work, check=False)
    assert broken.returncode != 0
    assert "remote:  !     " in broken.stderr
    assert "[remote rejected] master -> master (pre-receive hook declined)" in broken.stderr
    remote_head = run_git("ls-remote", live.remote(), "refs/heads/master", cwd=work).stdout
    assert remote_head.startswith(head)
    assert ReleaseStore(live.layout).versions(APP) == [1, 2]
    assert live.get()[0] == 200


def test_static_example_deploys(live: Live, tmp_path: Path) -> None:
    work = work_tree(tmp_path, "static")
    pushed = run_git("push", live.remote(), "master", cwd=work, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert "-----> Launching... done, v2" in pushed.stderr
    deadline = time.monotonic() + 10
    while True:
        status, body = live.get()
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200 and "<html" in body.lower()
