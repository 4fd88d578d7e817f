"""The release commands against a deployed app, as typed in a terminal."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from release.deploy import deploy
from release.dynos import processes
from release.store import ReleaseStore
from release.testing import RecordedOutput, fetch, make_slug, remove_containers, web_app_files
from shipway.apps import create_app
from shipway.cli import main
from shipway.layout import Layout
from shipway.router import Router
from shipway.settings import Settings

USER = "dev@example.com"


@pytest.fixture
def deployed(layout: Layout, docker_client: Any, stack_image: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Router]]:
    name = f"cli-{secrets.token_hex(3)}"
    monkeypatch.setenv("SHIPWAY_USER", USER)
    # the CLI reads settings from the data home, like an operator's machine
    layout.settings_file.write_text("[launch]\nstop_grace = 3\n")
    settings = Settings(router_port=0, launch_stop_grace=3.0)
    create_app(layout, name, USER)
    router = Router(layout, settings).start()
    try:
        slug = make_slug(layout, name, web_app_files("A"), {"web": "python3 app.py"})
        out = RecordedOutput()
        assert deploy(layout, settings, app=name, slug=slug, user=USER, commit="a" * 40,
                      commit_description="first", output_path=None, out=out,
                      docker=docker_client).status == "succeeded", out.text
        yield name, router
    finally:
        router.stop()
        remove_containers(docker_client, name)


def shipway(layout: Layout, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--home", str(layout.home), *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_config_set_relaunches_and_rollback_goes_back_one(
    layout: Layout, deployed: tuple[str, Router], capsys: pytest.CaptureFixture[str]
) -> None:
    app, router = deployed
    code, text = shipway(layout, capsys, "config:set", "GREETING=hi there", "-a", app)
    assert code == 0, text
    assert f"Setting GREETING and restarting {app}... done, v3" in text.splitlines()
    assert fetch(router.port, app) == (200, "A v3 web.1 profile=yes greeting=hi there")

    code, text = shipway(layout, capsys, "rollback", "-a", app)
    assert code == 0, text
    lines = text.splitlines()
    assert "Rolled back to v2" in lines
    assert any("doesn't add or remove add-ons" in line for line in lines)
    assert f"To undo, run: shipway rollback v3 -a {app}" in lines
    assert fetch(router.port, app) == (200, "A v4 web.1 profile=yes greeting=")

    code, text = shipway(layout, capsys, "releases", "-a", app)
    rows = text.splitlines()
    assert rows[0] == f"=== {app} Releases - Current: v4"
    assert rows[1].startswith("v4  Rollback to v2")
    assert rows[2].startswith("v3  Set GREETING config vars")
    assert rows[3].startswith("v2  Deploy aaaaaaa")

    code, text = shipway(layout, capsys, "releases:output", "v3", "-a", app)
    assert code == 0
    assert "-----> Launching... done, v3" in text.splitlines()


def test_ten_concurrent_config_sets_from_processes(
    layout: Layout, deployed: tuple[str, Router], docker_client: Any
) -> None:
    app, router = deployed
    env = {**os.environ, "SHIPWAY_HOME": str(layout.home)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "shipway.cli", "config:set", f"KEY_{i}={i}",
                          "-a", app], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
        for i in range(10)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, outputs
    store = ReleaseStore(layout)
    assert store.versions(app) == list(range(1, 13))
    assert all(r.status == "succeeded" for r in store.list(app))
    assert store.current(app) == store.get(app, 12)
    assert store.get(app, 12).config == {f"KEY_{i}": str(i) for i in range(10)}
    assert fetch(router.port, app)[1].startswith("A v12 web.1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if [d.release for d in processes(layout, app=app, docker=docker_client)] == [12]:
            break
        time.sleep(0.5)
    assert [d.release for d in processes(layout, app=app, docker=docker_client)] == [12]
