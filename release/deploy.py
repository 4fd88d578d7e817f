"""The post-receive stage: a new release ``Deploy <sha7>`` for a built slug, then its launch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.slug import Slug
from hooks.pipeline import Output
from release.launch import launch
from release.output import release_output
from release.records import Release
from release.store import ReleaseStore
from shipway.layout import Layout
from shipway.settings import Settings


def release_log(layout: Layout, app: str, version: int) -> Path:
    """Where a release that has no build log keeps its launch log."""
    return layout.logs_dir / app / f"v{version}.log"


def config_now(store: ReleaseStore, app: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """The app's config vars and add-ons: those of its latest release (failed ones included)."""
    latest = store.latest(app)
    if latest is None:
        return {}, ()
    return dict(latest.config), latest.addons


def fail_interrupted(store: ReleaseStore, app: str) -> None:
    """A release still pending while we hold the lock was left by a writer that crashed.

    Every writer finishes its release before it lets go of the lock, so only the latest can be.
    """
    latest = store.latest(app)
    if latest is not None and latest.status == "pending":
        store.finish(latest, "failed", failure="interrupted before it finished launching")


@dataclass
class PendingDeploy:
    """Release ``Deploy <sha7>`` written (pending) with the app lock held until ``close``.

    A push writes it before its ref moves (no space for it: the push is refused and the ref
    stays), then ``launch``es it, or ``discard``s it when the ref did not move.
    """

    layout: Layout
    release: Release
    path: Path
    hold: contextlib.ExitStack

    def launch(self, settings: Settings, *, out: Output, docker: Any) -> Release:
        with self.hold:
            return launch(self.layout, settings, self.release, docker=docker,
                          out=release_output(out, self.path, self.release))

    def discard(self) -> None:
        with self.hold:
            ReleaseStore(self.layout).discard(self.release)


def prepare_deploy(
    layout: Layout, *, app: str, slug: Slug, user: str, commit: str, commit_description: str,
    output_path: Path | None,
) -> PendingDeploy:
    """Write the pending release of a deploy, holding the app lock; raises DiskFull."""
    store = ReleaseStore(layout)
    hold = contextlib.ExitStack()
    hold.enter_context(store.lock(app))
    with contextlib.ExitStack() as undo:
        undo.push(hold)
        fail_interrupted(store, app)
        config, addons = config_now(store, app)
        path = output_path or release_log(layout, app, store.next_version(app))
        release = store.create(
            app, description=f"Deploy {commit[:7]}", user=user, slug=slug.id, commit=commit,
            commit_description=commit_description, config=config, addons=addons,
            output=str(path), already_locked=True,
        )
        undo.pop_all()
    return PendingDeploy(layout, release, path, hold)


def deploy(
    layout: Layout, settings: Settings, *, app: str, slug: Slug, user: str, commit: str,
    commit_description: str, output_path: Path | None, out: Output, docker: Any,
) -> Release:
    """New release ``Deploy <sha7>`` with the current config, launched; failed or succeeded."""
    pending = prepare_deploy(layout, app=app, slug=slug, user=user, commit=commit,
                             commit_description=commit_description, output_path=output_path)
    return pending.launch(settings, out=out, docker=docker)
