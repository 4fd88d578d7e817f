"""Creating and destroying apps: one place, called by the local admin CLI and the HTTP API."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from typing import Any

from dulwich.repo import Repo

from release.store import ReleaseStore
from shipway import nginx
from shipway.accounts import Accounts, App, now_iso
from shipway.errors import Conflict
from shipway.files import locked
from shipway.layout import Layout
from shipway.names import check_app_name, check_email


def create_app(layout: Layout, name: str, owner: str) -> App:
    """Make the app folder, its bare repository and release v1 "Initial release"."""
    name = check_app_name(name)
    owner = check_email(owner)
    layout.ensure()
    accounts = Accounts(layout)
    with locked(layout.locks_dir / "apps.lock"):
        if layout.app_file(name).exists():
            raise Conflict(f"Name {name} is already taken.")
        app_dir = layout.app_dir(name)
        app_dir.mkdir(parents=True, exist_ok=True)
        repo_path = layout.repo_path(name)
        if repo_path.exists():
            shutil.rmtree(repo_path)
        Repo.init_bare(str(repo_path), mkdir=True).close()
        app = App(name=name, owner=owner, created_at=now_iso())
        ReleaseStore(layout).create(
            name, description="Initial release", user=owner, status="succeeded"
        )
        accounts.save_app(app)  # written last: an app exists once app.toml does
    nginx.sync_app(layout, name, (), ())  # its host answers 503 until a web dyno runs
    return app


def destroy_app(layout: Layout, name: str) -> None:
    name = check_app_name(name)
    Accounts(layout).app(name)
    with locked(layout.locks_dir / "apps.lock"):
        layout.app_file(name).unlink()
        shutil.rmtree(layout.app_dir(name), ignore_errors=True)
    nginx.drop_app(layout, name)
    # its router and state-change lines go with it: a new app of that name starts clean
    nginx.router_log(layout, name).unlink(missing_ok=True)
    (layout.logs_dir / "shipway" / f"{name}.log").unlink(missing_ok=True)


def teardown_app(layout: Layout, settings: Any, name: str,
                 *, docker_factory: Callable[[], Any]) -> None:
    """``apps:destroy``: everything of the app goes, then its records.

    Its dynos, its add-ons (deprovisioned: a PostgreSQL database dropped, a Redis server and its
    data removed), the slugs no other app's release uses (archive files and their unpacked
    volumes), its Docker network, its route, repository, releases, build cache and logs.
    Without a Docker engine what lives in Docker is skipped.
    """
    # function-level imports: release/ and the add-ons build on this module's layer
    from builder.slug import SlugArchive
    from release.launch import LABEL_HOME, LABEL_SLUG, app_containers, remove_now
    from release.routes import remove_route
    from shipway.addons import load_provider
    from shipway.addons.redis import network_name, remove_network_if_unused
    from shipway.addons.store import attached

    name = check_app_name(name)
    Accounts(layout).app(name)
    store = ReleaseStore(layout)
    with store.lock(name), contextlib.ExitStack() as closing:
        archive = SlugArchive(layout)
        mine = {release.slug for release in store.list(name) if release.slug}
        mine |= {slug.id for slug in archive.all() if slug.app == name}
        docker = None
        if mine:  # an app that never had a slug never ran anything in Docker
            with contextlib.suppress(Exception):  # no engine: nothing of the app runs in it
                docker = docker_factory()
                closing.callback(docker.close)
        if docker is not None:
            remove_now(app_containers(docker, name, layout=layout))
        for addon in attached(layout, name):
            load_provider(addon.provider, settings).deprovision(addon.resource)
        others = {release.slug for other in Accounts(layout).apps() if other.name != name
                  for release in store.list(other.name) if release.slug}
        for slug_id in sorted(mine - others):
            if docker is not None:
                for volume in docker.volumes.list(filters={"label": [
                        f"{LABEL_SLUG}={slug_id}", f"{LABEL_HOME}={layout.home}"]}):
                    with contextlib.suppress(Exception):
                        volume.remove(force=True)
            with contextlib.suppress(Exception):
                archive.remove(slug_id)
        if docker is not None:
            remove_network_if_unused(docker, network_name(str(layout.home), name))
    remove_route(layout, name)
    destroy_app(layout, name)
