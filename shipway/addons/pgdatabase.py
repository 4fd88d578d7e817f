"""An app's PostgreSQL database as its users reach it: ``pg:info``, ``pg:psql``, ``pg:reset``.

The app's ``DATABASE_URL`` names the server as the dynos see it (a socket folder mounted at
``/run/shipway/postgresql``); ``database_of`` turns it back into what this host sees, so the
host's ``psql``, ``pg_dump`` and ``pg_restore`` connect as the app's own role. The password
travels in ``PGPASSWORD``, never in an argument list (``ps`` shows those to every user).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import psycopg

from release.config import config_vars
from shipway.accounts import Accounts
from shipway.addons import load_provider
from shipway.addons.records import Addon, AddonError, Provider
from shipway.addons.store import attached
from shipway.errors import NotFound, UsageError
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.settings import Settings

PROVIDER = "postgresql"
CONNECT_TIMEOUT = 5
PSQL_TIMEOUT = 300.0
OUTPUT_LIMIT = 1 << 20

ProviderFactory = Callable[[str, Settings], Provider]


@dataclass(frozen=True, slots=True)
class Database:
    """One app's database, as this host reaches it (built from addons.toml + the config var)."""

    app: str
    addon: Addon
    config_var: str
    url: str          # without the password
    password: str

    def env(self) -> dict[str, str]:
        """Variables for psql, pg_dump and pg_restore (the password, and no ~/.psqlrc)."""
        return {"PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
                "PSQLRC": "/dev/null", "PGAPPNAME": "shipway"}

    def connect(self) -> Any:
        try:
            return psycopg.connect(self.url, password=self.password, autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise AddonError(f"Could not connect to {self.addon.name}: {_one_line(exc)}") from exc


def host_url(container_url: str, mounts: dict[str, str]) -> tuple[str, str]:
    """(URL without password, password) for this host: mounted socket folders mapped back."""
    parts = urlsplit(container_url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    inside_to_host = {inside: host for host, inside in mounts.items()}
    if query.get("host") in inside_to_host:
        query["host"] = inside_to_host[query["host"]]
    user = unquote(parts.username or "")
    netloc = user + "@" + (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    url = urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/"), ""))
    return url, unquote(parts.password or "")


def database_of(layout: Layout, app: str, name: str | None = None) -> Database:
    """The app's database by add-on or attachment name; by default DATABASE or the only one."""
    Accounts(layout).app(app)
    found = [a for a in attached(layout, app) if a.provider == PROVIDER]
    if name:
        chosen = [a for a in found if name.upper().removesuffix("_URL") == a.attachment
                  or name == a.name]
        if not chosen:
            raise NotFound(f"Couldn't find a PostgreSQL database {name} on {app}.")
    else:
        chosen = [a for a in found if a.attachment == "DATABASE"] or found
    if not chosen:
        raise NotFound(f"{app} has no PostgreSQL database.",
                       hint=f"Attach one with shipway addons:create postgresql -a {app}.")
    addon = chosen[0]
    var = f"{addon.attachment}_URL"
    url = config_vars(layout, app).get(var)
    if not url:
        raise NotFound(f"{var} is not set on {app}: the add-on {addon.name} has no URL.")
    host, password = host_url(url, addon.mounts)
    return Database(app=app, addon=addon, config_var=var, url=host, password=password)


def database_info(db: Database) -> dict[str, str]:
    """``pg:info`` facts, asked of the database as the app's role."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), "
            "pg_size_pretty(pg_database_size(current_database())), "
            "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()), "
            "(SELECT count(*) FROM information_schema.tables "
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')), "
            "current_setting('max_connections')").fetchone()
    assert row is not None
    version, size, connections, tables, most = row
    return {"Plan": db.addon.plan, "Status": "Available",
            "Connections": f"{connections}/{most}", "PG Version": str(version),
            "Created": db.addon.created_at, "Data Size": str(size), "Tables": str(tables),
            "Add-on": db.addon.name}


def psql_argv(db: Database, *, command: str | None = None, script: bool = False) -> list[str]:
    """``psql`` on the app's database: interactive, ``-c COMMAND``, or a script on stdin."""
    argv = ["psql", "-X", "--set", "ON_ERROR_STOP=1", "--dbname", db.url]
    if command is not None:
        argv += ["-c", command]
    elif script:
        argv += ["-f", "-"]
    return argv


def run_psql(db: Database, *, command: str | None = None,
             script: str | None = None) -> tuple[int, str]:
    """Run psql to the end and answer (exit status, what it printed): the API's pg:psql."""
    if command is None and script is None:
        raise UsageError("Give a command (-c SQL) or a script on stdin.")
    if command is not None and "\x00" in command:
        raise UsageError("The SQL command cannot hold a NUL character.")
    argv = psql_argv(db, command=command, script=script is not None)
    try:
        done = subprocess.run(argv, input=script if script is not None else None,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", env=_env(db), timeout=PSQL_TIMEOUT, check=False)
    except FileNotFoundError:
        raise AddonError("psql is not installed on the server (scripts/host-setup).") from None
    except subprocess.TimeoutExpired:
        raise AddonError(f"psql ran longer than {PSQL_TIMEOUT:g} seconds and was stopped.") \
            from None
    get_log(app=db.app, addon=db.addon.name).info("pg.psql", status=done.returncode)
    return done.returncode, done.stdout[:OUTPUT_LIMIT]


def _env(db: Database) -> dict[str, str]:
    import os

    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM",
                                                         "HOME", "PAGER", "LESS", "COLUMNS")}
    return {**keep, **db.env()}


def reset_database(layout: Layout, settings: Settings, *, app: str, name: str | None,
                   confirm: str | None, user: str,
                   provider_factory: ProviderFactory = load_provider) -> Database:
    """Drop every object of the database (it is made again, empty); the dynos keep running."""
    db = database_of(layout, app, name)
    if confirm != app:
        raise UsageError(f"This destroys all data in {db.addon.name}. To proceed, pass "
                         f"--confirm {app}.")
    provider = provider_factory(PROVIDER, settings)
    reset = getattr(provider, "reset", None)
    if reset is None:
        raise AddonError(f"The {PROVIDER} provider cannot reset a database.")
    reset(db.addon.resource)
    get_log(app=app, user=user, addon=db.addon.name).info("pg.reset")
    return db


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
