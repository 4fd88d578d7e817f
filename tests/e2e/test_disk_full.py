"""A data home on a small filesystem that fills up: each push or config change fails with one
line and nothing is lost (no release left pending or half-written, no moved ref, no temp file).

Real server, real ``git push``, real Docker; the data home is a 64 MB tmpfs the test mounts,
filled with a ballast file to leave exactly the room each case needs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from release.store import RESERVE_BYTES, ReleaseStore
from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.server import start_platform
from tests.conftest import free_port, require, run_git
from tests.e2e.hostile import DEV, LIMITS, MB, Hostile

WEB = "python3 -m http.server $PORT"


class SmallDisk(Hostile):
    @property
    def ballast(self) -> Path:
        return self.layout.home / "ballast"

    def fill(self, leave: int) -> None:
        """Leave ``leave`` bytes free on the data home's filesystem."""
        self.ballast.unlink(missing_ok=True)
        stats = os.statvfs(self.layout.home)
        size = stats.f_bavail * stats.f_frsize - leave
        with self.ballast.open("wb") as fh:
            os.posix_fallocate(fh.fileno(), 0, size)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def push_when_full(self, app: str, work: Path, *,
                       leave: int) -> subprocess.CompletedProcess[str]:
        """``git push`` with only ``leave`` bytes free on the data home (freed afterwards)."""
        self.fill(leave=leave)
        try:
            return self.push(app, work)
        finally:
            self.free()

    def leftovers(self, app: str) -> list[str]:
        """Temp files, quarantines, reserves and build disks a failed write could leave."""
        home = self.layout.home
        found = [str(p.relative_to(home)) for p in home.rglob(".tmp-*")]
        found += [str(p.relative_to(home)) for p in home.rglob("incoming-*")]
        found += [str(p.relative_to(home)) for p in self.layout.builds_dir.glob("*")]
        return found


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, docker_client: Any,
          stack_image: str) -> Iterator[SmallDisk]:
    require("root (to mount the small data home)", os.geteuid() == 0)
    mount = tmp_path_factory.mktemp("small-disk")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mount)],
                   check=True)
    layout = Layout.at(mount / "home")
    layout.ensure()
    settings = LIMITS.with_overrides(router_port=free_port(), build_disk=24 * MB)
    running = start_platform(layout, settings)
    _, token = Accounts(layout).create_token(DEV)
    try:
        yield SmallDisk(layout, running, token, settings)
    finally:
        running.stop()
        for container in docker_client.containers.list(
                all=True, filters={"label": f"shipway.home={layout.home}"}):
            with contextlib.suppress(Exception):
                container.remove(force=True)
        for volume in docker_client.volumes.list(
                filters={"label": f"shipway.home={layout.home}"}):
            with contextlib.suppress(Exception):
                volume.remove(force=True)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def deployed_app(small: SmallDisk, tmp_path: Path) -> tuple[str, Path]:
    """An app with v2 running (a web process), and its work tree."""
    name = small.new_app(tmp_path, 'head -c 300000 /dev/urandom > "$1/noise"', web=WEB)
    work = tmp_path / "work"
    work.mkdir()
    run_git("init", "-q", "-b", "master", cwd=work)
    (work / "README").write_text("hello\n")
    run_git("add", "-A", cwd=work)
    run_git("commit", "-q", "-m", "first", cwd=work)
    first = small.push(name, work)
    assert first.returncode == 0, first.stderr
    assert "Launching... done, v2" in first.stderr
    return name, work


def statuses(small: SmallDisk, app: str) -> list[tuple[int, str]]:
    return [(r.version, r.status) for r in ReleaseStore(small.layout).list(app)]


def test_no_room_for_the_release_refuses_the_push_and_leaves_the_ref(
        small: SmallDisk, tmp_path: Path) -> None:
    app, work = deployed_app(small, tmp_path)
    before = small.ref(app)
    # the same tree reuses the slug: the pack and the build log fit, the release does not
    run_git("commit", "-q", "--allow-empty", "-m", "again", cwd=work)
    pushed = small.push_when_full(app, work, leave=RESERVE_BYTES // 4)
    assert pushed.returncode != 0
    assert ("remote:  !     Push rejected: no space left on the server's disk while writing "
            "release v3.") in pushed.stderr
    assert "[remote rejected] master -> master (no space left on device)" in pushed.stderr
    assert "Launching" not in pushed.stderr
    assert small.ref(app) == before
    assert statuses(small, app) == [(1, "succeeded"), (2, "succeeded")]
    assert small.leftovers(app) == []
    # with room again the same push goes through as v3
    again = small.push(app, work)
    assert again.returncode == 0, again.stderr
    assert "Launching... done, v3" in again.stderr


def test_no_room_for_the_pack_refuses_the_push(small: SmallDisk, tmp_path: Path) -> None:
    app, work = deployed_app(small, tmp_path)
    before = small.ref(app)
    (work / "data.bin").write_bytes(secrets.token_bytes(2 * MB))
    run_git("add", "-A", cwd=work)
    run_git("commit", "-q", "-m", "big", cwd=work)
    pushed = small.push_when_full(app, work, leave=256 * 1024)
    assert pushed.returncode != 0
    assert ("remote:  !     Push rejected: no space left on the server's disk while receiving "
            "the pack.") in pushed.stderr
    assert small.ref(app) == before
    assert statuses(small, app) == [(1, "succeeded"), (2, "succeeded")]
    assert small.leftovers(app) == []


def test_no_room_for_the_slug_refuses_the_push(small: SmallDisk, tmp_path: Path) -> None:
    app, work = deployed_app(small, tmp_path)
    before = small.ref(app)
    (work / "README").write_text("changed\n")  # a new tree: a new build, a 300 KB slug
    run_git("commit", "-qam", "change", cwd=work)
    pushed = small.push_when_full(app, work, leave=128 * 1024)
    assert pushed.returncode != 0
    assert ("remote:  !     Push rejected: no space left on the server's disk while writing "
            "the slug.") in pushed.stderr
    assert small.ref(app) == before
    assert statuses(small, app) == [(1, "succeeded"), (2, "succeeded")]
    assert small.leftovers(app) == []


def test_a_config_change_on_a_full_disk_is_refused_with_507(small: SmallDisk,
                                                           tmp_path: Path) -> None:
    app = f"hw-{secrets.token_hex(4)}"
    create_app(small.layout, app, DEV)
    small.fill(leave=0)
    try:
        answer = requests.patch(f"http://127.0.0.1:{small.server.port}/api/apps/{app}/config-vars",
                                json={"GREETING": "hi"}, auth=(DEV, small.token), timeout=30)
    finally:
        small.free()
    assert answer.status_code == 507
    assert answer.json() == {"id": "disk_full", "message": "No space left on the server's "
                             "disk while writing release v2."}
    assert statuses(small, app) == [(1, "succeeded")]
    assert small.leftovers(app) == []


def test_a_disk_that_fills_during_the_launch_ends_the_release_failed_not_pending(
        small: SmallDisk, tmp_path: Path) -> None:
    app, work = deployed_app(small, tmp_path)
    (work / "Procfile").write_text(f"web: {WEB}\nrelease: sleep 3\n")
    run_git("add", "-A", cwd=work)
    run_git("commit", "-q", "-m", "with a release phase", cwd=work)
    push = subprocess.Popen(["git", "push", small.remote(app), "master"], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert push.stderr is not None
    seen: list[str] = []
    try:
        for line in push.stderr:
            seen.append(line)
            if "Running release command" in line:
                small.fill(leave=0)  # v3 is written; everything after finds the disk full
        push.wait(timeout=120)
    finally:
        small.free()
    output = "".join(seen)
    assert ("remote:  !     v3 failed to start: no space left on the server's disk; "
            "still running v2") in output
    assert "Launching... done" not in output
    assert statuses(small, app) == [(1, "succeeded"), (2, "succeeded"), (3, "failed")]
    assert small.leftovers(app) == []
    answer = requests.get(f"http://127.0.0.1:{small.settings.router_port}/",
                          headers={"Host": f"{app}.localhost"}, timeout=10)
    assert answer.status_code == 200
