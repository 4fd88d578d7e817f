"""The data home's filesystem contract, in one place.

::

    HOME/
      shipway.toml            server settings (see settings.py)
      users.toml              users and token hashes (accounts.py)
      apps/NAME/
        app.toml              owner, collaborators, buildpack, stack (accounts.py)
        repo.git/             bare git repository
        releases/vNNNNNNN.toml  release records (release/store.py)
        releases/.lock        per-app mutation lock
        formation.toml        process counts (release/)
        domains.toml          custom domains; tls/cert.pem, tls/key.pem (shipway/domains.py)
        cache/                buildpack CACHE_DIR (builder/)
        backups/              pg:backups of its database: bNNN.dump, backups.toml,
                              schedule.toml (shipway/addons/pgbackups.py)
      slugs/SHA256.tar.gz     content-addressed slugs, SHA256.toml metadata (builder/slug.py)
      addons/APP/NAME/        data an add-on keeps on this host: a redis server's config
                              and append-only file (shipway/addons/redis.py)
      logs/                   build and launch logs, server log, nginx-error.log
      logs/router/NAME.log    the router's request lines (shipway/nginx.py)
      logs/shipway/NAME.log   dyno state changes (release/dynolog.py)
      run/                    routes (release/routes.py), pid files
      run/nginx/              the router's nginx.conf, apps/NAME.conf, pid, temp (shipway/nginx.py)
      run/builds/             a running build's disk image and mount (builder/disk.py)

Paths for an app are only built from a validated app name (``shipway.names``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shipway.names import check_app_name


@dataclass(frozen=True, slots=True)
class Layout:
    home: Path

    @classmethod
    def at(cls, home: str | Path) -> Layout:
        return cls(Path(home).resolve())

    @property
    def settings_file(self) -> Path:
        return self.home / "shipway.toml"

    @property
    def users_file(self) -> Path:
        return self.home / "users.toml"

    @property
    def apps_dir(self) -> Path:
        return self.home / "apps"

    @property
    def slugs_dir(self) -> Path:
        return self.home / "slugs"

    @property
    def addons_dir(self) -> Path:
        return self.home / "addons"

    def backups_dir(self, app: str) -> Path:
        return self.app_dir(app) / "backups"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def builds_dir(self) -> Path:
        """Size-limited build disks while builds run (builder/disk.py)."""
        return self.home / "run" / "builds"

    @property
    def locks_dir(self) -> Path:
        return self.home / "run" / "locks"

    def app_dir(self, app: str) -> Path:
        return self.apps_dir / check_app_name(app)

    def app_file(self, app: str) -> Path:
        return self.app_dir(app) / "app.toml"

    def repo_path(self, app: str) -> Path:
        return self.app_dir(app) / "repo.git"

    def releases_dir(self, app: str) -> Path:
        return self.app_dir(app) / "releases"

    def cache_dir(self, app: str) -> Path:
        return self.app_dir(app) / "cache"

    def app_lock(self, app: str) -> Path:
        return self.app_dir(app) / ".lock"

    def ensure(self) -> None:
        """The data home's folders, readable by Shipway's user only (it holds every secret)."""
        for path in (self.home, self.apps_dir, self.slugs_dir, self.logs_dir, self.run_dir,
                     self.locks_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            if path.stat().st_mode & 0o077:
                path.chmod(0o700)
