"""The postgresql add-on against a real PostgreSQL server: attach, redeploy, rollback, detach."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import tomli_w

from release.store import ReleaseStore
from shipway.layout import Layout
from tests.conftest import IN_CI, run_git
from tests.e2e.test_push_deploy import Live, free_port, work_tree
from tests.postgres import PostgresServer, find_bindir, start_postgres

APP = "hello"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_bindir() is None:
        if IN_CI:
            pytest.fail("PostgreSQL is required under CI=true (scripts/host-setup installs it)")
        pytest.skip("PostgreSQL is not installed")
    server = start_postgres(free_port())
    yield server
    server.stop()


@pytest.fixture
def pg_live(layout: Layout, docker_client: Any, stack_image: str, git_bin: str,
            postgres: PostgresServer) -> Iterator[Live]:
    from shipway.accounts import Accounts
    from shipway.apps import create_app
    from shipway.server import start_platform
    from shipway.settings import load_settings

    doc = {"port": 0, "postgresql_url": postgres.admin_url,
           "router": {"port": free_port()}, "launch": {"boot_timeout": 60.0, "stop_grace": 2.0}}
    layout.settings_file.write_text(tomli_w.dumps(doc))
    settings = load_settings(layout.settings_file)
    server = start_platform(layout, settings)
    _, token = Accounts(layout).create_token("dev@example.com")
    create_app(layout, APP, "dev@example.com")
    yield Live(layout, server, settings, token)
    server.stop()
    for c in docker_client.containers.list(all=True, filters={"label": f"shipway.app={APP}"}):
        c.remove(force=True)


def shipway(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPWAY_USER": "dev@example.com"}
    return subprocess.run([sys.executable, "-m", "shipway.cli", "--home", str(layout.home), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def roles(postgres: PostgresServer) -> set[str]:
    with psycopg.connect(postgres.admin_url) as conn:
        return {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'hello_%'")}


def test_database_survives_redeploy_and_rollback(pg_live: Live, postgres: PostgresServer,
                                                 tmp_path: Path) -> None:
    work = work_tree(tmp_path, "python-postgres")
    pushed = run_git("push", pg_live.remote(), "master", cwd=work, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert "-----> Launching... done, v2" in pushed.stderr
    assert pg_live.get() == (200, "no database attached (release v2)\n")

    created = shipway(pg_live.layout, "addons:create", "postgresql", "-a", APP)
    assert created.returncode == 0, created.stderr
    assert f"Creating postgresql on {APP}... done, v3" in created.stdout
    assert "as DATABASE_URL" in created.stdout
    v3 = ReleaseStore(pg_live.layout).get(APP, 3)
    assert v3.description == "Attach DATABASE (postgresql)" and v3.status == "succeeded"
    assert "DATABASE_URL" in v3.config and len(v3.addons) == 1
    assert pg_live.get() == (200, "visits: 1 (release v3)\n")
    assert pg_live.get() == (200, "visits: 2 (release v3)\n")
    info = shipway(pg_live.layout, "releases:info", "v3", "-a", APP)
    assert "Addons:" in info.stdout and v3.addons[0] in info.stdout

    (work / "CHANGES").write_text("redeploy\n")
    run_git("add", "-A", cwd=work)
    run_git("commit", "-qm", "redeploy", cwd=work)
    pushed = run_git("push", pg_live.remote(), "master", cwd=work, check=False)
    assert "-----> Launching... done, v4" in pushed.stderr, pushed.stderr
    assert pg_live.get() == (200, "visits: 3 (release v4)\n")

    back = shipway(pg_live.layout, "rollback", "v2", "-a", APP)
    assert back.returncode == 0, back.stderr
    assert "Rolled back to v2" in back.stdout
    assert f"{v3.addons[0]} (DATABASE) was attached after v2: it stays provisioned" in back.stdout
    assert pg_live.get() == (200, "no database attached (release v5)\n")
    assert len(roles(postgres)) == 1, "rollback must not deprovision"

    forward = shipway(pg_live.layout, "rollback", "v4", "-a", APP)
    assert forward.returncode == 0, forward.stderr
    assert pg_live.get() == (200, "visits: 4 (release v6)\n")

    listed = shipway(pg_live.layout, "addons", "-a", APP)
    assert v3.addons[0] in listed.stdout and "postgresql:dev" in listed.stdout

    refused = shipway(pg_live.layout, "addons:destroy", v3.addons[0], "-a", APP)
    assert refused.returncode != 0 and "--confirm hello" in refused.stderr
    destroyed = shipway(pg_live.layout, "addons:destroy", v3.addons[0], "-a", APP,
                        "--confirm", APP)
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"Destroying {v3.addons[0]} on {APP}... done, v7" in destroyed.stdout
    v7 = ReleaseStore(pg_live.layout).get(APP, 7)
    assert v7.description == "Detach DATABASE (postgresql)" and "DATABASE_URL" not in v7.config
    assert roles(postgres) == set()


def test_failed_provisioning_creates_no_release(pg_live: Live, postgres: PostgresServer) -> None:
    settings_file = pg_live.layout.settings_file
    good = settings_file.read_text()
    before = ReleaseStore(pg_live.layout).versions(APP)
    try:
        settings_file.write_text(good.replace(str(postgres.socket_dir), "/nonexistent"))
        down = shipway(pg_live.layout, "addons:create", "postgresql", "-a", APP)
        assert down.returncode == 1
        assert "Could not reach the PostgreSQL server" in down.stderr
        assert down.stderr.strip().count("\n") == 0 and "Traceback" not in down.stderr

        # a role that may not create roles: permission denied, nothing half-made
        with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE weak LOGIN PASSWORD 'weak' CREATEDB")
        weak = postgres.admin_url.replace(f"postgres:{postgres.password}@", "weak:weak@")
        settings_file.write_text(good.replace(postgres.admin_url, weak))
        denied = shipway(pg_live.layout, "addons:create", "postgresql", "-a", APP)
        assert denied.returncode == 1 and "permission denied" in denied.stderr.lower()
    finally:
        settings_file.write_text(good)
    assert ReleaseStore(pg_live.layout).versions(APP) == before
    assert roles(postgres) == set()
    assert shipway(pg_live.layout, "addons", "-a", APP).stdout.count("postgresql-") == 0
