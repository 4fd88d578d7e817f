"""pg:backups on a running app: a restore puts old rows back while its dynos keep serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from release.launch import app_containers
from release.store import ReleaseStore
from tests.conftest import run_git
from tests.e2e.test_addons import APP, pg_live, postgres, shipway  # noqa: F401 - fixtures
from tests.e2e.test_push_deploy import Live, work_tree


def test_restore_while_the_app_keeps_serving(pg_live: Live, docker_client: Any,  # noqa: F811
                                             tmp_path: Path) -> None:
    work = work_tree(tmp_path, "python-postgres")
    pushed = run_git("push", pg_live.remote(), "master", cwd=work, check=False)
    assert "-----> Launching... done, v2" in pushed.stderr, pushed.stderr
    created = shipway(pg_live.layout, "addons:create", "postgresql", "-a", APP)
    assert created.returncode == 0, created.stderr
    assert pg_live.get() == (200, "visits: 1 (release v3)\n")
    assert pg_live.get() == (200, "visits: 2 (release v3)\n")

    captured = shipway(pg_live.layout, "pg:backups:capture", "-a", APP)
    assert "Backing up DATABASE to b001... done" in captured.stdout, captured.stderr
    assert pg_live.get() == (200, "visits: 3 (release v3)\n")
    deleted = shipway(pg_live.layout, "pg:psql", "-a", APP, "-c", "DELETE FROM visits")
    assert deleted.stdout == "DELETE 3\n", deleted.stderr
    assert pg_live.get() == (200, "visits: 1 (release v3)\n")
    before = {c.id for c in app_containers(docker_client, APP, layout=pg_live.layout)}

    restored = shipway(pg_live.layout, "pg:backups:restore", "b001", "-a", APP, "--confirm", APP)
    assert restored.returncode == 0, restored.stderr
    assert f"{APP} kept running during the restore" in restored.stdout
    # the two visits of the backup are back, and this request is the third
    assert pg_live.get() == (200, "visits: 3 (release v3)\n")
    after = app_containers(docker_client, APP, layout=pg_live.layout)
    assert {c.id for c in after} == before and all(c.status == "running" for c in after)
    assert ReleaseStore(pg_live.layout).versions(APP)[-1] == 3

    destroyed = shipway(pg_live.layout, "addons:destroy", "DATABASE", "-a", APP, "--confirm", APP)
    assert destroyed.returncode == 0, destroyed.stderr
