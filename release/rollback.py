"""Rollback: a new release ``Rollback to vN`` with vN's slug and config vars, launched as usual.

Never touches the git repository or add-on provisioning.
"""

from __future__ import annotations

from typing import Any

from builder.slug import SlugArchive
from hooks.pipeline import Output
from release.deploy import config_now, fail_interrupted, release_log
from release.launch import launch
from release.output import release_output
from release.records import Release
from release.store import ReleaseStore
from shipway.errors import Conflict, NotFound
from shipway.layout import Layout
from shipway.settings import Settings

REMINDER = (
    "Rollback affects code and config vars; it doesn't add or remove add-ons "
    "or roll back external state such as database contents."
)


def rollback_target(store: ReleaseStore, layout: Layout, app: str, version: int | None) -> Release:
    """The release to roll back to; Conflict/NotFound with the reason it cannot be."""
    current = store.current(app)
    if version is None:
        if current is None:
            raise Conflict(f"{app} has no release to roll back from.")
        older = [r for r in store.list(app)
                 if r.version < current.version and r.status == "succeeded" and r.slug]
        if not older:
            raise Conflict(f"{app} has no earlier release to roll back to.")
        target = older[-1]
    else:
        target = store.get(app, version)
    if target.status != "succeeded":
        raise Conflict(f"Cannot roll back to {target.name}: that release {target.status}.")
    if not target.slug:
        raise Conflict(f"Cannot roll back to {target.name}: it has no slug (nothing was deployed).")
    if not SlugArchive(layout).exists(target.slug):
        raise Conflict(
            f"Cannot roll back to {target.name}: its slug {target.slug[:12]} was pruned."
        )
    return target


def rollback(
    layout: Layout, settings: Settings, *, app: str, version: int | None, user: str,
    out: Output, docker: Any,
) -> Release:
    """New release ``Rollback to vN`` with vN's slug and config vars (add-on vars included);
    the add-ons themselves stay as they are. Launched like any release."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    store = ReleaseStore(layout)
    with store.lock(app):
        fail_interrupted(store, app)
        target = rollback_target(store, layout, app, version)
        current = store.current(app)
        path = release_log(layout, app, store.next_version(app))
        release = store.create(
            app, description=f"Rollback to {target.name}", user=user, slug=target.slug,
            commit=target.commit, commit_description=target.commit_description,
            # add-ons stay attached through a rollback: the record lists what is attached now
            config=dict(target.config), addons=config_now(store, app)[1], output=str(path),
            already_locked=True,
        )
        done = launch(layout, settings, release, docker=docker, out=release_output(out, path, release))
    if done.status == "succeeded":
        out.line(f"Rolled back to {target.name}")
        out.line(REMINDER)
        if current is not None:
            out.line(f"To undo, run: shipway rollback {current.name} -a {app}")
    return done
