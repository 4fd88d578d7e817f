"""Dynos after launch: scale, restart, ps, logs, reconcile and the supervisor."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from release.deploy import deploy
from release.dynos import processes, restart, scale
from release.logplex import logs
from release.reconcile import Supervisor, reconcile
from release.store import ReleaseStore
from release.testing import (
    Poller,
    RecordedOutput,
    fetch,
    make_slug,
    remove_containers,
    web_app_files,
)
from shipway.apps import create_app
from shipway.cli import main
from shipway.errors import UsageError
from shipway.layout import Layout
from shipway.router import Router
from shipway.settings import Settings

USER = "dev@example.com"


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return check()


@pytest.fixture
def app(layout: Layout, docker_client: Any, stack_image: str) -> Iterator[str]:
    """An app serving v2 (code A)."""
    name = f"dynos-{secrets.token_hex(3)}"
    create_app(layout, name, USER)
    try:
        slug = make_slug(layout, name, web_app_files("A"),
                         {"web": "python3 app.py", "worker": "sleep infinity"})
        out = RecordedOutput()
        release = deploy(layout, SETTINGS, app=name, slug=slug, user=USER, commit="a" * 40,
                         commit_description="first", output_path=None, out=out,
                         docker=docker_client)
        assert release.status == "succeeded", out.text
        yield name
    finally:
        remove_containers(docker_client, name)


SETTINGS = Settings(router_port=0, launch_boot_timeout=30.0, launch_stop_grace=3.0)


@pytest.fixture
def router(layout: Layout) -> Iterator[Router]:
    running = Router(layout, SETTINGS).start()
    yield running
    running.stop()


def running_dynos(layout: Layout, app: str, docker: Any) -> list[str]:
    return [f"{d.name} v{d.release}" for d in processes(layout, app=app, docker=docker)
            if d.state == "running"]


def test_a_killed_web_dyno_is_restarted_by_the_supervisor(
    layout: Layout, app: str, router: Router, docker_client: Any
) -> None:
    supervisor = Supervisor(layout, SETTINGS, docker=docker_client, settle=0.5).start()
    try:
        [web] = docker_client.containers.list(
            filters={"label": [f"shipway.app={app}", "shipway.dyno=web.1"]})
        web.kill()
        assert eventually(lambda: running_dynos(layout, app, docker_client) == ["web.1 v2"])
        assert eventually(lambda: fetch(router.port, app)[0] == 200)
        assert fetch(router.port, app) == (200, "A v2 web.1 profile=yes greeting=")
        [again] = docker_client.containers.list(
            filters={"label": [f"shipway.app={app}", "shipway.dyno=web.1"]})
        assert again.id != web.id  # Docker left the killed one down: the supervisor replaced it
        assert ReleaseStore(layout).versions(app) == [1, 2]
        states = [line.split(" ", 1)[1] for line in
                  logs(layout, app=app, docker=docker_client, source="shipway")]
        assert states[:2] == ["shipway[web.1]: Starting process with command `python3 app.py`",
                              "shipway[web.1]: State changed from starting to up"]
        crashed = states.index("shipway[web.1]: State changed from up to crashed")
        assert states[crashed - 1] == "shipway[web.1]: Process exited with status 137"
        assert states[-1] == "shipway[web.1]: State changed from starting to up"
    finally:
        supervisor.stop()


def test_a_crashed_dyno_is_restarted_in_place_and_routed_again(
    layout: Layout, app: str, router: Router, docker_client: Any
) -> None:
    supervisor = Supervisor(layout, SETTINGS, docker=docker_client, settle=0.5).start()
    try:
        [web] = docker_client.containers.list(
            filters={"label": [f"shipway.app={app}", "shipway.dyno=web.1"]})
        web.exec_run(["bash", "-c", "kill -TERM -1"], user="1000")  # the app process exits
        assert eventually(lambda: web.reload() or web.attrs["RestartCount"] >= 1)
        assert eventually(lambda: fetch(router.port, app)[0] == 200)
        assert fetch(router.port, app) == (200, "A v2 web.1 profile=yes greeting=")
        [again] = docker_client.containers.list(
            filters={"label": [f"shipway.app={app}", "shipway.dyno=web.1"]})
        assert again.id == web.id  # Docker's restart policy brought the same dyno back
    finally:
        supervisor.stop()


def test_logs_follow_shows_new_lines(
    layout: Layout, app: str, router: Router, docker_client: Any
) -> None:
    found: list[str] = []

    def follow() -> None:
        for line in logs(layout, app=app, docker=docker_client, tail=0, follow=True):
            found.append(line)

    threading.Thread(target=follow, daemon=True).start()
    time.sleep(1.0)
    fetch(router.port, app, "/followed-path")
    assert eventually(lambda: any("app[web.1]: " in line and "/followed-path" in line
                                  for line in found), timeout=10)
    assert eventually(lambda: any(" router: at=info method=GET path=\"/followed-path\"" in line
                                  and " dyno=web.1 " in line for line in found), timeout=10)
    # dynos started after `logs -f` began are followed too
    scale(layout, SETTINGS, app=app, counts={"web": 2}, docker=docker_client)
    assert eventually(lambda: any(line.endswith("app[web.2]: booting A on 5000")
                                  for line in found), timeout=15)


def test_scale_ps_and_round_robin(
    layout: Layout, app: str, router: Router, docker_client: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scale(layout, SETTINGS, app=app, counts={"web": 2, "worker": 1}, docker=docker_client)
    assert running_dynos(layout, app, docker_client) == ["web.1 v2", "web.2 v2", "worker.1 v2"]
    dynos_seen = {fetch(router.port, app)[1].split()[2] for _ in range(6)}
    assert dynos_seen == {"web.1", "web.2"}
    assert main(["--home", str(layout.home), "ps", "-a", app]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "=== web (2): python3 app.py"
    assert out[1].startswith("web.1: up ") and out[1].endswith(" (v2)")
    assert "=== worker (1): sleep infinity" in out
    with pytest.raises(UsageError, match=r"Couldn't find that process type \(clock\)."):
        scale(layout, SETTINGS, app=app, counts={"clock": 1}, docker=docker_client)
    scale(layout, SETTINGS, app=app, counts={"web": 0, "worker": 0}, docker=docker_client)
    assert eventually(lambda: running_dynos(layout, app, docker_client) == [])
    status, page = fetch(router.port, app)
    assert status == 503 and f"<strong>{app}</strong> has no web process running" in page


def test_restart_replaces_dynos_and_logs_show_them(
    layout: Layout, app: str, router: Router, docker_client: Any
) -> None:
    before = {c.id for c in docker_client.containers.list(filters={"label": f"shipway.app={app}"})}
    with Poller(router.port, app) as poller:
        restart(layout, SETTINGS, app=app, docker=docker_client)
        assert fetch(router.port, app) == (200, "A v2 web.1 profile=yes greeting=")
        time.sleep(1.5)  # past the drain: the old dyno is being stopped now
    assert poller.errors == []
    assert len(poller.answers) > 5
    assert eventually(lambda: {
        c.id for c in docker_client.containers.list(filters={"label": f"shipway.app={app}"})
    }.isdisjoint(before))
    lines = list(logs(layout, app=app, docker=docker_client, tail=50, source="app"))
    assert any(line.endswith("app[web.1]: booting A on 5000") for line in lines)
    assert ReleaseStore(layout).versions(app) == [1, 2]

    def stopped() -> list[str]:
        return [line.split(" ", 1)[1] for line in logs(layout, app=app, docker=docker_client,
                                                       source="shipway")][-3:]

    assert eventually(lambda: stopped() == [
        "shipway[web.1]: Stopping all processes with SIGTERM",
        "shipway[web.1]: Process exited with status 0",
        "shipway[web.1]: State changed from up to down"])


def test_reconcile_brings_back_lost_dynos_and_removes_strays(
    layout: Layout, app: str, router: Router, docker_client: Any, stack_image: str
) -> None:
    for container in docker_client.containers.list(filters={"label": f"shipway.app={app}"}):
        container.remove(force=True)
    stray = docker_client.containers.create(
        stack_image, command=["true"],
        labels={"shipway.app": "ghost-app", "shipway.dyno": "web.1", "shipway.release": "3",
                "shipway.home": str(layout.home)},
    )
    assert fetch(router.port, app)[0] in (502, 503)
    reconcile(layout, SETTINGS, docker=docker_client)
    assert running_dynos(layout, app, docker_client) == ["web.1 v2"]
    assert fetch(router.port, app) == (200, "A v2 web.1 profile=yes greeting=")
    assert not docker_client.containers.list(all=True, filters={"id": stray.id})


def test_another_data_home_never_touches_these_dynos(
    layout: Layout, app: str, router: Router, docker_client: Any, tmp_path: Path
) -> None:
    other = Layout.at(tmp_path / "other-home")
    other.ensure()
    reconcile(other, SETTINGS, docker=docker_client)
    assert running_dynos(layout, app, docker_client) == ["web.1 v2"]
    assert fetch(router.port, app) == (200, "A v2 web.1 profile=yes greeting=")
