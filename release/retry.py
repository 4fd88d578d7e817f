"""``releases:retry``: the release phase of the latest release again, as a new release (as
Heroku does): same slug and commit, the config vars and add-ons of now, launched like any."""

from __future__ import annotations

from typing import Any

from builder.slug import SlugArchive
from hooks.pipeline import Output
from release.deploy import config_now, fail_interrupted, release_log
from release.formation import RELEASE_PHASE
from release.launch import launch
from release.output import release_output
from release.records import Release
from release.store import ReleaseStore
from shipway.errors import Conflict, NotFound
from shipway.layout import Layout
from shipway.settings import Settings


def retry(layout: Layout, settings: Settings, *, app: str, user: str, out: Output,
          docker: Any) -> Release:
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    store = ReleaseStore(layout)
    with store.lock(app):
        fail_interrupted(store, app)
        latest = store.latest(app)
        if latest is None or not latest.slug:
            raise Conflict(f"{app} has no release with code to retry.",
                           hint="Push to deploy first.")
        slug = SlugArchive(layout).get(latest.slug)
        if RELEASE_PHASE not in slug.process_types:
            raise Conflict(f"{latest.name} has no release phase to retry: its Procfile declares "
                           "no release process.", hint="Add `release: COMMAND` to the Procfile.")
        config, addons = config_now(store, app)
        path = release_log(layout, app, store.next_version(app))
        release = store.create(
            app, description=f"Retry of {latest.name}: {latest.description}"[:200], user=user,
            slug=latest.slug, commit=latest.commit, commit_description=latest.commit_description,
            config=config, addons=addons, output=str(path), already_locked=True,
        )
        return launch(layout, settings, release, docker=docker,
                      out=release_output(out, path, release))
