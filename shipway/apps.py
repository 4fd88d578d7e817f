"""Creating and destroying apps: one place, called by the local admin CLI and the HTTP API."""

from __future__ import annotations

import shutil

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
