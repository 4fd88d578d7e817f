"""The redis add-on with a real redis-server: an rq web + worker app deployed by push, the data
surviving a restart of Shipway, reachable only from the app's own dynos."""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from release.store import ReleaseStore
from shipway.addons.redis import home_id
from shipway.addons.store import attached
from shipway.layout import Layout
from shipway.server import start_platform
from shipway.settings import load_settings
from tests.conftest import free_port, run_git
from tests.e2e.test_push_deploy import Live, work_tree


@pytest.fixture
def app_name() -> str:
    return "rq-" + secrets.token_hex(3)


@pytest.fixture
def redis_live(layout: Layout, docker_client: Any, stack_image: str, git_bin: str,
               app_name: str) -> Iterator[Live]:
    from shipway.accounts import Accounts
    from shipway.apps import create_app

    doc = {"port": 0, "router": {"port": free_port()},
           "launch": {"boot_timeout": 60.0, "stop_grace": 2.0}}
    layout.settings_file.write_text(tomli_w.dumps(doc))
    settings = load_settings(layout.settings_file)
    live = Live(layout, start_platform(layout, settings), settings,
                Accounts(layout).create_token("dev@example.com")[1])
    create_app(layout, app_name, "dev@example.com")
    yield live
    live.server.stop()
    for c in docker_client.containers.list(all=True, filters={"label": f"shipway.app={app_name}"}):
        c.remove(force=True)
    for n in docker_client.networks.list(names=[f"shipway-{home_id(str(layout.home))}-{app_name}"]):
        n.remove()


def shipway(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPWAY_USER": "dev@example.com"}
    return subprocess.run([sys.executable, "-m", "shipway.cli", "--home", str(layout.home), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def get(live: Live, app: str, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", live.settings.router_port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": f"{app}.localhost"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def wait_for_job(live: Live, app: str, job: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status, text = get(live, app, f"/jobs/{job}")
        if text.startswith("finished") or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def connect_from_outside(docker_client: Any, image: str, host: str) -> str:
    """What a container that is not one of the app's dynos gets when it dials host:6379."""
    probe = ("import socket\ntry:\n    socket.create_connection((%r, 6379), timeout=3)\n"
             "    print('connected')\nexcept OSError as e:\n    print('refused', type(e).__name__)")
    out = docker_client.containers.run(image, ["python3", "-c", probe % host], remove=True,
                                       labels={"shipway.test": "redis-probe"})
    return str(out.decode().strip())


def test_rq_app_with_its_own_redis(redis_live: Live, app_name: str, docker_client: Any,
                                   stack_image: str, tmp_path: Path) -> None:
    live, app = redis_live, app_name
    work = work_tree(tmp_path, "python-redis")
    remote = live.remote(app)
    pushed = run_git("push", remote, "master", cwd=work, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert "-----> Launching... done, v2" in pushed.stderr
    assert get(live, app) == (200, "no redis attached (release v2)\n")

    unknown = shipway(live.layout, "addons:create", "redis:huge", "-a", app)
    assert unknown.returncode == 1
    assert unknown.stderr == (
        " !    Unknown plan redis:huge. Plans: mini (25 MB), premium (256 MB).\n")
    assert ReleaseStore(live.layout).versions(app) == [1, 2]

    created = shipway(live.layout, "addons:create", "redis", "-a", app)
    assert created.returncode == 0, created.stderr
    assert f"Creating redis on {app}... done, v3" in created.stdout
    assert "as REDIS_URL" in created.stdout
    addon = attached(live.layout, app)[0]
    v3 = ReleaseStore(live.layout).get(app, 3)
    assert v3.description == "Attach REDIS (redis)" and v3.status == "succeeded"
    assert v3.config["REDIS_URL"].startswith("redis://:")
    assert v3.config["REDIS_URL"].endswith(f"@{addon.name}:6379")
    assert get(live, app) == (200, "hits: 1 (release v3)\n")
    assert get(live, app) == (200, "hits: 2 (release v3)\n")

    info = shipway(live.layout, "addons:info", addon.name, "-a", app)
    assert info.returncode == 0, info.stderr
    assert "Plan:" in info.stdout and "redis:mini" in info.stdout
    assert "redis:mini (25 MB)" in info.stdout
    assert "Status:" in info.stdout and "available" in info.stdout
    assert "of 25 MB" in info.stdout  # memory used

    # the worker takes jobs the web process enqueues
    scaled = shipway(live.layout, "ps:scale", "worker=1", "-a", app)
    assert scaled.returncode == 0, scaled.stderr
    status, job = get(live, app, "/jobs?text=hello")
    assert status == 202, job
    assert wait_for_job(live, app, job.strip()) == "finished: HELLO!\n"

    # nobody but the app's dynos reaches it: not by name, not by address
    redis_container = docker_client.containers.get(addon.resource["container"])
    address = redis_container.attrs["NetworkSettings"]["Networks"][addon.network]["IPAddress"]
    assert connect_from_outside(docker_client, stack_image, addon.name).startswith("refused")
    assert connect_from_outside(docker_client, stack_image, address).startswith("refused")
    assert not redis_container.attrs["NetworkSettings"]["Ports"]

    # Shipway stops; the host "reboots" (the Redis container is gone); Shipway starts again
    live.server.stop()
    redis_container.stop(timeout=10)
    redis_container.remove()
    live.server = start_platform(live.layout, live.settings)
    assert get(live, app) == (200, "hits: 3 (release v3)\n")
    status, job = get(live, app, "/jobs?text=again")
    assert wait_for_job(live, app, job.strip()) == "finished: AGAIN!\n"

    # a Redis container removed while Shipway runs is started again by the supervisor
    docker_client.containers.get(addon.resource["container"]).remove(force=True)
    deadline = time.monotonic() + 30
    while get(live, app)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert get(live, app)[1].startswith("hits: ")

    # without its Redis the worker could not boot: scale it down first, as on Heroku
    assert shipway(live.layout, "ps:scale", "worker=0", "-a", app).returncode == 0
    refused = shipway(live.layout, "addons:destroy", addon.name, "-a", app)
    assert refused.returncode == 2 and f"--confirm {app}" in refused.stderr
    destroyed = shipway(live.layout, "addons:destroy", addon.name, "-a", app, "--confirm", app)
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"Destroying {addon.name} on {app}... done, v4" in destroyed.stdout
    assert "REDIS_URL" not in ReleaseStore(live.layout).get(app, 4).config
    assert not docker_client.containers.list(
        all=True, filters={"label": f"shipway.addon={addon.name}"})
    assert not Path(addon.resource["folder"]).exists()
    assert get(live, app) == (200, "no redis attached (release v4)\n")
    # the app's network goes once the old dynos on it have stopped
    network = f"shipway-{home_id(str(live.layout.home))}-{app}"
    deadline = time.monotonic() + 30
    while docker_client.networks.list(names=[network]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not docker_client.networks.list(names=[network])
