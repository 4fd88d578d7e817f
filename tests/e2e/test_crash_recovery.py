"""``shipway serve`` killed mid-build, then started again; and stopped with SIGTERM mid-build.

Real server processes, the real ``git`` client, real build containers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from release.store import ReleaseStore
from shipway import nginx
from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.layout import Layout
from tests.conftest import free_port, run_git
from tests.e2e.test_build_faults import make_buildpack
from tests.integration.conftest import make_repo

DEV = "dev@example.com"
BUILD_TIMEOUT = 4


@dataclass
class Serve:
    """A ``shipway serve`` process on its own data home and ports."""

    layout: Layout
    port: int
    token: str
    app: str
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        # a file, not a pipe: a pipe nobody reads would block the server once it is full
        with (self.layout.home.parent / "serve.log").open("a") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shipway.cli", "serve", "--home", str(self.layout.home)],
                stdout=output, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"http://127.0.0.1:{self.port}/api/openapi.json", timeout=1)
                return
            assert self.process.poll() is None, self.output()
            time.sleep(0.1)
        raise AssertionError("shipway serve did not start listening")

    def output(self) -> str:
        return (self.layout.home.parent / "serve.log").read_text()

    def remote(self) -> str:
        return f"http://dev%40example.com:{self.token}@127.0.0.1:{self.port}/{self.app}.git"

    def push(self, work: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(["git", "push", self.remote(), "master"], cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def builds(docker_client: Any, layout: Layout) -> list[Any]:
    return list(docker_client.containers.list(all=True, filters={"label": [
        "shipway.role=build", f"shipway.home={layout.home}"]}))


def wait_for_running_build(docker_client: Any, layout: Layout) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            running = [c for c in builds(docker_client, layout) if c.status == "running"]
        except docker.errors.NotFound:  # one went between the list and its inspection
            running = []
        if running:
            return running[0]
        time.sleep(0.2)
    raise AssertionError("no build container started")


@pytest.fixture
def serve(layout: Layout, docker_client: Any, stack_image: str, git_bin: str,
          tmp_path: Path) -> Iterator[Serve]:
    port = free_port()
    layout.settings_file.write_text(
        f"port = {port}\n[router]\nport = {free_port()}\nhttps_port = {free_port()}\n"
        f"[build]\ntimeout = {BUILD_TIMEOUT}\n[launch]\nstop_grace = 2\n")
    _, token = Accounts(layout).create_token(DEV)
    app = f"crash-{os.urandom(3).hex()}"
    create_app(layout, app, DEV)
    # a build that never ends by itself: only its time limit (or Shipway) stops it
    pack = make_buildpack(tmp_path / "bp", 'echo "-----> compiling forever"; sleep 600',
                          name="Sleepy")
    Accounts(layout).update_app(app, buildpack=str(pack))
    running = Serve(layout, port, token, app)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.process.kill()
        running.process.wait()
    # a killed server leaves its nginx master behind (the next start of this home stops it)
    master = nginx.master_pid(layout)
    if master is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGKILL)
    for container in builds(docker_client, layout):
        with contextlib.suppress(Exception):
            container.remove(force=True)


def test_a_crash_mid_build_leaves_nothing_running_and_the_next_start_clears_it(
        serve: Serve, docker_client: Any, tmp_path: Path) -> None:
    layout = serve.layout
    serve.start()
    work = make_repo(tmp_path / "work")
    push = serve.push(work)
    build = wait_for_running_build(docker_client, layout)
    assert serve.process is not None
    serve.process.kill()  # kill -9: no cleanup of any kind
    serve.process.wait()
    push.communicate(timeout=30)
    assert push.returncode != 0
    # what a crash leaves: the build container, temp files, a release stuck pending
    (layout.slugs_dir / ".tmp-build-crash.tar.gz").write_bytes(b"half a slug")
    layout.cache_dir(serve.app).mkdir(parents=True, exist_ok=True)
    (layout.cache_dir(serve.app) / ".tmp-cache").write_bytes(b"half a cache")
    stuck = ReleaseStore(layout).create(serve.app, description="Deploy 1234567", user=DEV)
    build.reload()
    assert build.status == "running"  # the server is gone, the build is not (yet)

    # no build outlives its time limit, even with no server to enforce it
    deadline = time.monotonic() + BUILD_TIMEOUT + 30
    while build.status == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        build.reload()
    assert build.status == "exited"

    serve.start()
    assert builds(docker_client, layout) == []
    assert list(layout.slugs_dir.glob(".tmp-*")) == []
    assert list(layout.cache_dir(serve.app).glob(".tmp-*")) == []
    failed = ReleaseStore(layout).get(serve.app, stuck.version)
    assert failed.status == "failed"
    assert "interrupted" in failed.failure
    shown = requests.get(f"http://127.0.0.1:{serve.port}/api/apps/{serve.app}/releases",
                         auth=(DEV, serve.token), timeout=10).json()
    assert shown[-1]["status"] == "failed"
    assert run_git("ls-remote", serve.remote(), cwd=work).stdout == ""


def test_sigterm_stops_the_builds_it_runs_and_the_pusher_is_told(
        serve: Serve, docker_client: Any, tmp_path: Path) -> None:
    serve.start()
    work = make_repo(tmp_path / "work")
    push = serve.push(work)
    wait_for_running_build(docker_client, serve.layout)
    assert serve.process is not None
    stopped_at = time.monotonic()
    serve.process.send_signal(signal.SIGTERM)
    _, stderr = push.communicate(timeout=30)
    try:
        serve.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("serve ignored SIGTERM:\n" + serve.output()[-4000:]) from None
    print(f"serve exited {time.monotonic() - stopped_at:.2f}s after SIGTERM")
    assert push.returncode != 0
    assert "remote:  !     Build stopped: the server is shutting down; push rejected." in stderr
    assert builds(docker_client, serve.layout) == []
    serve.start()
    assert run_git("ls-remote", serve.remote(), cwd=work).stdout == ""
