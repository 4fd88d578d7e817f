"""The post-receive stage: a new release ``Deploy <sha7>`` for a built slug, then its launch."""

from __future__ import annotations

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


def deploy(
    layout: Layout, settings: Settings, *, app: str, slug: Slug, user: str, commit: str,
    commit_description: str, output_path: Path | None, out: Output, docker: Any,
) -> Release:
    """New release ``Deploy <sha7>`` with the current config, launched; failed or succeeded."""
    store = ReleaseStore(layout)
    with store.lock(app):
        fail_interrupted(store, app)
        config, addons = config_now(store, app)
        path = output_path or release_log(layout, app, store.next_version(app))
        release = store.create(
            app, description=f"Deploy {commit[:7]}", user=user, slug=slug.id, commit=commit,
            commit_description=commit_description, config=config, addons=addons,
            output=str(path), already_locked=True,
        )
        return launch(layout, settings, release, docker=docker, out=release_output(out, path, release))
