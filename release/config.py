"""Config vars: every change is a new release holding the full new snapshot, then a relaunch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hooks.pipeline import Output
from release.deploy import config_now, fail_interrupted, release_log
from release.launch import launch
from release.output import release_output
from release.records import Release
from release.store import ReleaseStore
from shipway.errors import NotFound, UsageError
from shipway.layout import Layout
from shipway.names import check_config_key
from shipway.settings import Settings


def config_vars(layout: Layout, app: str) -> dict[str, str]:
    """The app's config vars now (those of its latest release)."""
    store = ReleaseStore(layout)
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    return config_now(store, app)[0]


def config_var(layout: Layout, app: str, key: str) -> str:
    config = config_vars(layout, app)
    if key not in config:
        raise NotFound(f"Config var {key} is not set on {app}.")
    return config[key]


def describe_changes(changes: Mapping[str, str | None]) -> str:
    """Heroku's wording: ``Set FOO, BAR config vars`` / ``Remove FOO config vars``."""
    set_keys = [k for k, v in changes.items() if v is not None]
    removed = [k for k, v in changes.items() if v is None]
    if set_keys and removed:
        return f"Set {', '.join(set_keys)} and remove {', '.join(removed)} config vars"
    if set_keys:
        return f"Set {', '.join(set_keys)} config vars"
    return f"Remove {', '.join(removed)} config vars"


def check_changes(changes: Mapping[str, str | None]) -> None:
    if not changes:
        raise UsageError("No config vars given: use KEY=VALUE to set, KEY to unset.")
    for key, value in changes.items():
        check_config_key(key)
        if value is not None and "\x00" in value:
            raise UsageError(f"Config var {key} cannot hold a NUL character.")


def parse_assignments(pairs: list[str]) -> dict[str, str | None]:
    """``["A=1", "B=x=y"]`` -> ``{"A": "1", "B": "x=y"}``; a missing ``=`` is a usage error."""
    changes: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"{pair} is invalid. Must be in the format FOO=bar.")
        changes[check_config_key(key)] = value
    return changes


def set_config(
    layout: Layout, settings: Settings, *, app: str, changes: Mapping[str, str | None],
    user: str, out: Output, docker: Any, description: str | None = None,
    addons: tuple[str, ...] | None = None, check_keys: bool = True,
) -> Release:
    """One new release with the changed snapshot (None unsets); relaunched if there is a slug.

    Add-ons pass their own ``description`` (``Attach DATABASE (postgresql)``) and the new list
    of attached ``addons``.
    """
    if check_keys:
        check_changes(changes)
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    store = ReleaseStore(layout)
    with store.lock(app):
        fail_interrupted(store, app)
        config, current_addons = config_now(store, app)
        if addons is None:
            addons = current_addons
        for key, value in changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        current = store.current(app)
        slug = current.slug if current is not None else ""
        version = store.next_version(app)
        path = release_log(layout, app, version)
        release = store.create(
            app, description=description or describe_changes(changes), user=user,
            status="pending" if slug else "succeeded", slug=slug,
            commit=current.commit if current is not None else "",
            commit_description=current.commit_description if current is not None else "",
            config=config, addons=addons, output=str(path) if slug else "",
            already_locked=True,
        )
        if not slug:
            return release
        return launch(layout, settings, release, docker=docker, out=release_output(out, path, release))
