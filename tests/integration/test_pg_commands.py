"""``shipway pg:*`` against a real PostgreSQL server, on the data home and through the API."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import requests
import tomli_w

from hooks.sideband import Collector
from shipway.accounts import Accounts
from shipway.addons import pgbackups
from shipway.addons.service import create_addon
from shipway.addons.store import attached
from shipway.api import make_api
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.server import RunningServer, start
from shipway.settings import load_settings
from tests.conftest import IN_CI, free_port
from tests.postgres import PostgresServer, find_bindir, start_postgres

APP = "notes"
DEV, OTHER, FRIEND = "dev@example.com", "other@example.com", "friend@example.com"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_bindir() is None:
        if IN_CI:
            pytest.fail("PostgreSQL is required under CI=true (scripts/host-setup installs it)")
        pytest.skip("PostgreSQL is not installed")
    server = start_postgres(free_port())
    yield server
    server.stop()


@dataclass
class PgPlatform:
    layout: Layout
    server: RunningServer
    tokens: dict[str, str]
    postgres: PostgresServer
    logged_in: str = ""

    def local(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """``shipway --home HOME ...`` on the server's own machine."""
        return self._run(["--home", str(self.layout.home), *args], input=input)

    def remote(self, *args: str, who: str = DEV,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """``shipway ...`` on a laptop logged in to the server as ``who``."""
        if self.logged_in != who:
            login = self._run(["login", "--server", self.server.url, "--email", who,
                               "--token", self.tokens[who]])
            assert login.returncode == 0, login.stderr
            self.logged_in = who
        return self._run(list(args), input=input)

    def _run(self, args: list[str], input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SHIPWAY_USER": DEV}
        env.pop("SHIPWAY_HOME", None)
        done = subprocess.run([sys.executable, "-m", "shipway.cli", *args], capture_output=True,
                              text=True, env=env, input=input, timeout=120)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def _admin_of_app_db(self) -> str:
        addon = attached(self.layout, APP)[0]
        return self.postgres.admin_url.replace("/postgres?", f"/{addon.resource['database']}?")

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        """A query on the app's database as the server's admin (what is really there)."""
        with psycopg.connect(self._admin_of_app_db(), autocommit=True) as conn:
            return list(conn.execute(sql).fetchall())

    def execute(self, sql: str) -> None:
        with psycopg.connect(self._admin_of_app_db(), autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture
def pg(layout: Layout, postgres: PostgresServer) -> Iterator[PgPlatform]:
    layout.settings_file.write_text(tomli_w.dumps({"port": 0,
                                                   "postgresql_url": postgres.admin_url}))
    settings = load_settings(layout.settings_file)
    server = start(layout, settings, api=make_api(layout, settings, docker_factory=lambda: None))
    accounts = Accounts(layout)
    tokens = {who: accounts.create_token(who)[1] for who in (DEV, OTHER, FRIEND)}
    create_app(layout, APP, DEV)
    accounts.add_collaborator(APP, FRIEND)
    create_addon(layout, settings, app=APP, spec="postgresql", as_name=None, user=DEV,
                 out=Collector(), docker=None)
    platform = PgPlatform(layout, server, tokens, postgres)
    yield platform
    server.stop()
    for addon in attached(layout, APP):
        with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{addon.resource["database"]}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{addon.resource["role"]}"')


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_psql_capture_delete_restore_download_reset(pg: PgPlatform, tmp_path: Path) -> None:
    made = pg.local("pg:psql", "-a", APP, "-c",
                    "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL); "
                    "INSERT INTO notes (body) VALUES ('milk'), ('eggs'), ('bread')")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "CREATE TABLE\nINSERT 0 3\n"
    assert "--> Connecting to postgresql-" in made.stderr

    counted = pg.local("pg:psql", "-a", APP, "-c", "SELECT count(*) FROM notes")
    assert counted.stdout == " count \n-------\n     3\n(1 row)\n\n"

    info = pg.local("pg:info", "-a", APP)
    assert info.returncode == 0, info.stderr
    assert info.stdout.startswith("=== DATABASE_URL\n")
    lines = dict(line.split(":", 1) for line in info.stdout.splitlines()[1:])
    assert lines["PG Version"].strip()[:2].isdigit()
    assert lines["Tables"].strip() == "1"
    assert lines["Status"].strip() == "Available"
    assert "/" in lines["Connections"] and lines["Data Size"].strip().endswith("kB")

    captured = pg.local("pg:backups:capture", "-a", APP)
    assert captured.returncode == 0, captured.stderr
    assert "Backing up DATABASE to b001... done" in captured.stdout
    backup = pgbackups.find_backup(pg.layout, APP, "b001")
    dump = pgbackups.dump_path(pg.layout, APP, backup)
    assert dump.stat().st_size == backup.size and sha256_of(dump) == backup.sha256
    assert f"SHA-256:     {backup.sha256}" in captured.stdout
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    assert pg.local("pg:psql", "-a", APP, "-c", "DELETE FROM notes WHERE body <> 'milk'"
                    ).stdout == "DELETE 2\n"
    refused = pg.local("pg:backups:restore", "b001", "-a", APP)
    assert refused.returncode == 2
    assert refused.stderr == (f" !    This overwrites all data in {backup.addon} (DATABASE_URL) "
                              f"with b001. To proceed, pass --confirm {APP}.\n")
    assert pg.rows("SELECT count(*) FROM notes") == [(1,)]

    restored = pg.local("pg:backups:restore", "b001", "-a", APP, "--confirm", APP)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout == (f"Restoring b001 to DATABASE_URL on {APP}... done\n"
                               f"{APP} kept running during the restore: its dynos were not "
                               "restarted.\n")
    assert pg.rows("SELECT body FROM notes ORDER BY id") == [("milk",), ("eggs",), ("bread",)]

    target = tmp_path / "latest.dump"
    downloaded = pg.local("pg:backups:download", "-a", APP, "-o", str(target))
    assert downloaded.returncode == 0, downloaded.stderr
    assert sha256_of(target) == backup.sha256
    assert f"SHA-256 {backup.sha256} (checked)" in downloaded.stdout
    assert not list(tmp_path.glob(".tmp-*"))

    listed = pg.local("pg:backups", "-a", APP)
    assert listed.stdout.startswith("=== Backups\nID    Created at")
    assert "b001  " in listed.stdout and "DATABASE" in listed.stdout

    # numbers are never reused, and deleting needs --confirm
    assert "to b002" in pg.local("pg:backups:capture", "-a", APP).stdout
    assert pg.local("pg:backups:delete", "b002", "-a", APP).returncode == 2
    assert pg.local("pg:backups:delete", "b002", "-a", APP, "--confirm", APP).stdout == (
        f"Deleting backup b002 on {APP}... done\n")
    assert "to b003" in pg.local("pg:backups:capture", "-a", APP).stdout
    assert [b.id for b in pgbackups.list_backups(pg.layout, APP)] == ["b001", "b003"]
    assert sorted(p.name for p in pg.layout.backups_dir(APP).glob("*.dump")) == [
        "b001.dump", "b003.dump"]

    # pg:reset empties the database, only with --confirm
    unconfirmed = pg.local("pg:reset", "-a", APP)
    assert unconfirmed.returncode == 2
    assert f"To proceed, pass --confirm {APP}." in unconfirmed.stderr
    assert pg.rows("SELECT count(*) FROM notes") == [(3,)]
    wrong = pg.local("pg:reset", "-a", APP, "--confirm", "someone-else")
    assert wrong.returncode == 2 and pg.rows("SELECT count(*) FROM notes") == [(3,)]
    reset = pg.local("pg:reset", "-a", APP, "--confirm", APP)
    assert reset.stdout == f"Resetting {backup.addon}... done\n"
    assert pg.rows("SELECT count(*) FROM information_schema.tables "
                   "WHERE table_schema = 'public'") == [(0,)]
    gone = pg.local("pg:psql", "-a", APP, "-c", "SELECT count(*) FROM notes")
    assert gone.returncode == 1 and 'relation "notes" does not exist' in gone.stderr


def test_a_failed_backup_leaves_no_file_and_says_why(pg: PgPlatform) -> None:
    assert pg.local("pg:psql", "-a", APP, "-c", "CREATE TABLE ok (id int)").returncode == 0
    # a table the app's role may not read (made by the server's admin): pg_dump fails on it
    pg.execute("CREATE TABLE secret (id int); REVOKE ALL ON secret FROM PUBLIC")
    failed = pg.local("pg:backups:capture", "-a", APP)
    assert failed.returncode == 1
    assert failed.stdout == "Starting backup... failed\n"
    assert failed.stderr.startswith(" !    Backup failed: pg_dump: error:")
    assert "permission denied for table secret" in failed.stderr
    assert failed.stderr.count("\n") == 1
    assert pgbackups.list_backups(pg.layout, APP) == []
    assert list(pg.layout.backups_dir(APP).iterdir()) == [pg.layout.backups_dir(APP) / ".lock"]

    pg.execute("DROP TABLE secret")
    assert "to b001" in pg.local("pg:backups:capture", "-a", APP).stdout


def test_the_same_commands_through_the_api(pg: PgPlatform, tmp_path: Path) -> None:
    made = pg.remote("pg:psql", "-a", APP, "-c",
                     "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('a'), ('b')")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "CREATE TABLE\nINSERT 0 2\n"
    local = pg.local("pg:psql", "-a", APP, "-c", "SELECT body FROM notes ORDER BY body")
    remote = pg.remote("pg:psql", "-a", APP, "-c", "SELECT body FROM notes ORDER BY body")
    assert remote.stdout == local.stdout == " body \n------\n a\n b\n(2 rows)\n\n"
    script = pg.remote("pg:psql", "-a", APP, input="SELECT 40 + 2 AS answer;\n")
    assert script.stdout == " answer \n--------\n     42\n(1 row)\n\n"
    bad = pg.remote("pg:psql", "-a", APP, "-c", "SELECT nope")
    assert bad.returncode == 1 and 'column "nope" does not exist' in bad.stdout

    info = pg.remote("pg:info", "-a", APP)
    assert info.stdout.splitlines()[0] == "=== DATABASE_URL" and "Tables:" in info.stdout

    captured = pg.remote("pg:backups:capture", "-a", APP)
    assert captured.returncode == 0, captured.stderr
    assert "Backing up DATABASE to b001... done" in captured.stdout
    backup = pgbackups.find_backup(pg.layout, APP, "latest")
    assert pg.remote("pg:backups", "-a", APP).stdout == pg.local("pg:backups", "-a", APP).stdout

    target = tmp_path / "b001.dump"
    downloaded = pg.remote("pg:backups:download", "b001", "-a", APP, "-o", str(target))
    assert downloaded.returncode == 0, downloaded.stderr
    assert sha256_of(target) == backup.sha256

    pg.execute("DELETE FROM notes")
    restored = pg.remote("pg:backups:restore", "-a", APP, "--confirm", APP)
    assert restored.returncode == 0, restored.stderr
    assert f"Restoring b001 to DATABASE_URL on {APP}... done" in restored.stdout
    assert pg.rows("SELECT count(*) FROM notes") == [(2,)]

    scheduled = pg.remote("pg:backups:schedule", "-a", APP, "--at", "02:30 Europe/Paris")
    assert scheduled.stdout.startswith(
        "Scheduling automatic daily backups of DATABASE at 02:30 Europe/Paris... done\n")
    assert "DATABASE: daily at 02:30 Europe/Paris, keeping the last 7" in pg.local(
        "pg:backups:schedules", "-a", APP).stdout
    bad_time = pg.remote("pg:backups:schedule", "-a", APP, "--at", "25:00")
    assert bad_time.returncode == 2 and "Invalid --at '25:00'" in bad_time.stderr

    refused = pg.remote("pg:reset", "-a", APP)
    assert refused.returncode == 2 and f"pass --confirm {APP}" in refused.stderr
    assert pg.rows("SELECT count(*) FROM notes") == [(2,)]

    # a collaborator may; someone else may not, and learns nothing
    assert pg.remote("pg:backups", "-a", APP, who=FRIEND).returncode == 0
    for args in (("pg:info",), ("pg:backups",), ("pg:backups:download", "-o", str(tmp_path / "x")),
                 ("pg:psql", "-c", "SELECT 1")):
        denied = pg.remote(*args, "-a", APP, who=OTHER)
        assert denied.returncode == 1, args
        assert denied.stderr.startswith(" !    ") and denied.stderr.count("\n") == 1
    assert not (tmp_path / "x").exists()
    raw = requests.get(f"{pg.server.url}/api/apps/{APP}/pg/backups/b001/download",
                       auth=(OTHER, pg.tokens[OTHER]), timeout=10)
    assert raw.status_code == 404 and raw.json()["id"] == "not_found"


def test_scheduled_backups_run_daily_and_keep_the_last_n(pg: PgPlatform) -> None:
    pg.local("pg:psql", "-a", APP, "-c", "CREATE TABLE t (id int)")
    made = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    pgbackups.set_schedule(pg.layout, app=APP, name=None, at="02:00", keep=3, user=DEV,
                           clock=lambda: made)
    manual = pgbackups.capture(pg.layout, app=APP, name=None, user=DEV)
    assert pgbackups.run_due_backups(pg.layout, now=made + timedelta(hours=1)) == []
    taken = []
    for day in range(5):
        now = datetime(2026, 3, 2 + day, 2, 0, 30, tzinfo=UTC)
        taken += pgbackups.run_due_backups(pg.layout, now=now)
        assert pgbackups.run_due_backups(pg.layout, now=now + timedelta(minutes=5)) == []
    assert taken == [(APP, f"b{n:03d}") for n in range(2, 7)]
    kept = pgbackups.list_backups(pg.layout, APP)
    assert [(b.id, b.kind) for b in kept] == [
        (manual.id, "manual"), ("b004", "scheduled"), ("b005", "scheduled"),
        ("b006", "scheduled")]
    assert sorted(p.name for p in pg.layout.backups_dir(APP).glob("*.dump")) == [
        "b001.dump", "b004.dump", "b005.dump", "b006.dump"]
