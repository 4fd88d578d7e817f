"""What a crash leaves, cleared at start: build containers and disks, temp files, pending releases.

Build containers carry ``shipway.home`` (builder/container.py), so only this data home's are
removed; temp files are the ``.tmp-*`` names ``write_atomically`` and the builder write and
never read; a release still ``pending`` once its app lock is free was left by a writer that
died, and is marked failed ("interrupted").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from builder.container import remove_orphan_builds
from builder.disk import clean_build_disks
from release.deploy import fail_interrupted
from release.store import ReleaseStore
from shipway.files import TEMP_PREFIX
from shipway.layout import Layout
from shipway.log import get as get_log


@dataclass
class Recovered:
    """What ``recover`` cleared (logged at start)."""

    containers: int = 0
    temp_files: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)


def _app_names(layout: Layout) -> list[str]:
    if not layout.apps_dir.is_dir():
        return []
    return sorted(p.name for p in layout.apps_dir.iterdir() if (p / "app.toml").exists())


def remove_temp_files(layout: Layout) -> list[str]:
    """``.tmp-*`` files in the slug archive, the build caches and the release folders."""
    folders = [layout.home, layout.slugs_dir]
    for app in _app_names(layout):
        folders += [layout.cache_dir(app), layout.releases_dir(app), layout.app_dir(app)]
    removed: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for leftover in folder.glob(TEMP_PREFIX + "*"):
            if leftover.is_file() or leftover.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
                    removed.append(str(leftover.relative_to(layout.home)))
    return removed


def fail_pending_releases(layout: Layout) -> list[str]:
    """Mark failed every release left pending by a writer that died (``app vN``)."""
    store = ReleaseStore(layout)
    failed: list[str] = []
    for app in _app_names(layout):
        with store.lock(app):
            latest = store.latest(app)
            if latest is not None and latest.status == "pending":
                fail_interrupted(store, app)
                failed.append(f"{app} {latest.name}")
    return failed


def recover(layout: Layout, *, docker: Any | None) -> Recovered:
    """Everything above; ``docker`` None skips the containers (a server without builds)."""
    done = Recovered()
    if docker is not None:
        done.containers = remove_orphan_builds(docker, str(layout.home))
    done.temp_files = remove_temp_files(layout) + clean_build_disks(layout.builds_dir)
    done.interrupted = fail_pending_releases(layout)
    if done.containers or done.temp_files or done.interrupted:
        get_log().warning("recovered_after_crash", build_containers=done.containers,
                          temp_files=done.temp_files[:50], interrupted=done.interrupted)
    return done


__all__ = ["recover", "Recovered", "remove_temp_files", "fail_pending_releases"]
