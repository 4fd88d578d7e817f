"""A build's disk and its slug's unpacked size: over either, one line and nothing kept.

Real server, real ``git push``, real build containers on their size-limited disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.slug import SlugArchive
from tests.e2e.hostile import Hostile, hostile, mounts_under, work_tree  # noqa: F401


def assert_nothing_kept(hostile: Hostile, app: str, docker_client: Any) -> None:  # noqa: F811
    assert hostile.ref(app) is None
    assert [s for s in SlugArchive(hostile.layout).all() if s.app == app] == []
    assert list(hostile.layout.builds_dir.iterdir()) == []
    assert mounts_under(hostile.layout.home) == []
    assert list(hostile.layout.slugs_dir.glob(".tmp-*")) == []
    assert docker_client.containers.list(all=True, filters={"label": [
        "shipway.role=build", f"shipway.app={app}"]}) == []


def test_a_build_that_fills_its_disk_is_refused_and_the_host_disk_is_as_before(
        hostile: Hostile, docker_client: Any, tmp_path: Path) -> None:  # noqa: F811
    # writes to /tmp and /app until the disk is full, then pretends all went well
    app = hostile.new_app(tmp_path, 'echo "-----> filling"; '
                          'dd if=/dev/zero of=/tmp/fill bs=1M count=80 2>/dev/null; '
                          'dd if=/dev/zero of="$1/fill" bs=1M count=80 2>/dev/null; '
                          'df -h "$1" | tail -1; exit 0')
    pushed = hostile.push(app, work_tree(tmp_path / "work"))
    assert pushed.returncode != 0
    assert ("remote:  !     Build ran out of disk: a build may write 96.0MB (build.disk); "
            "push rejected.") in pushed.stderr
    assert "pre-receive hook declined" in pushed.stderr
    assert_nothing_kept(hostile, app, docker_client)


def test_a_small_slug_that_unpacks_too_large_is_refused_while_it_streams(
        hostile: Hostile, docker_client: Any, tmp_path: Path) -> None:  # noqa: F811
    # 30 MB of zeros gzip to 30 KB: only the unpacked size gives it away
    app = hostile.new_app(tmp_path, 'head -c 30000000 /dev/zero > "$1/zeros"')
    pushed = hostile.push(app, work_tree(tmp_path / "work"))
    assert pushed.returncode != 0
    assert "remote:  !     Compiled slug size: 20.0MB+ unpacked is too large" in pushed.stderr
    assert "(max is 20.0MB unpacked)." in pushed.stderr
    assert_nothing_kept(hostile, app, docker_client)
