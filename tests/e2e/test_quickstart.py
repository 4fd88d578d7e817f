"""The README's quick start on a laptop: the ``shipway`` CLI drives a real server over HTTP.

tokens:create (admin, on the server) -> login -> apps:create in a git repository ->
``git push platform master`` -> the app answers through the router -> config and rollback
through the API -> slugs, slugs:contents, slugs:diff, slugs:prune --dry-run.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from shipway.client import read_credentials
from shipway.layout import Layout
from shipway.server import RunningServer, start_platform
from shipway.settings import Settings
from tests.conftest import free_port, run_git
from tests.integration.test_api_support import shipway_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EMAIL = "you@example.com"


@dataclass
class Server:
    layout: Layout
    running: RunningServer
    settings: Settings
    app: str

    def get(self) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.settings.router_port, timeout=10)
        try:
            conn.request("GET", "/", headers={"Host": f"{self.app}.localhost"})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def wait_for(self, text: str, seconds: float = 15.0) -> str:
        deadline = time.monotonic() + seconds
        body = ""
        while time.monotonic() < deadline:
            status, body = self.get()
            if status == 200 and text in body:
                return body
            time.sleep(0.2)
        raise AssertionError(f"the app never answered {text!r}; last answer: {body!r}")


@pytest.fixture
def server(layout: Layout, docker_client: Any, stack_image: str,
           git_bin: str) -> Iterator[Server]:
    settings = Settings(port=0, router_port=free_port(), launch_boot_timeout=30.0,
                        launch_stop_grace=2.0)
    running = start_platform(layout, settings)
    app = f"hello-{secrets.token_hex(3)}"
    yield Server(layout, running, settings, app)
    running.stop()
    for c in docker_client.containers.list(all=True, filters={"label": f"shipway.app={app}"}):
        with contextlib.suppress(docker.errors.NotFound):  # a stopping dyno may remove itself
            c.remove(force=True)


def log_in(server: Server) -> None:
    created = shipway_cli("--home", str(server.layout.home), "tokens:create", EMAIL, "--admin")
    token = created.stdout.splitlines()[-1]
    shipway_cli("login", "--server", server.running.url, "--email", EMAIL, "--token", token)


def work_tree(tmp_path: Path) -> Path:
    work = tmp_path / "python-plain"
    shutil.copytree(EXAMPLES / "python-plain", work)
    run_git("init", "-q", "-b", "master", cwd=work)
    run_git("add", "-A", cwd=work)
    run_git("commit", "-q", "-m", "first", cwd=work)
    return work


def test_quick_start_push_config_rollback_and_slug_tools(server: Server, tmp_path: Path) -> None:
    log_in(server)
    work = work_tree(tmp_path)
    created = shipway_cli("apps:create", server.app, cwd=work)
    assert f"set git remote platform to {server.running.url}/{server.app}.git" in created.stdout

    pushed = run_git("push", "platform", "master", cwd=work, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: -----> Launching... done, v2" in pushed.stderr
    assert "python-plain example: Hello (release v2)" in server.wait_for("release v2")
    info = json.loads(shipway_cli("apps:info", "--json", cwd=work).stdout)
    assert info["current_release"] == 2
    assert info["web_url"] == f"http://{server.app}.localhost:{server.settings.router_port}/"

    # the CLI's API: config change and rollback relaunch through Docker
    auth = read_credentials("127.0.0.1")  # what login stored, as git uses it
    assert auth is not None and auth[0] == EMAIL
    api = f"{server.running.url}/api/apps/{server.app}"
    config = requests.patch(f"{api}/config-vars", json={"GREETING": "Hi"}, auth=auth,
                            timeout=120)
    assert config.status_code == 200 and config.json() == {"GREETING": "Hi"}
    assert config.headers["Shipway-Release"] == "3"
    server.wait_for("Hi (release v3)")

    (work / "app.py").write_text((work / "app.py").read_text().replace(
        "python-plain example", "python-plain v2"))
    run_git("commit", "-qam", "second", cwd=work)
    second = run_git("push", "platform", "master", cwd=work, check=False)
    assert "remote: -----> Launching... done, v4" in second.stderr, second.stderr
    server.wait_for("python-plain v2: Hi (release v4)")

    diff = shipway_cli("slugs:diff", "v2", "v4", cwd=work).stdout.splitlines()
    assert diff[1].startswith("M  app.py (") and diff[2] == "0 added, 0 removed, 1 changed", diff
    back = requests.post(f"{api}/releases", json={"release": 3}, auth=auth, timeout=120)
    assert back.status_code == 201, back.text
    assert back.json()["description"] == "Rollback to v3" and back.json()["status"] == "succeeded"
    server.wait_for("python-plain example: Hi (release v5)")

    listed = shipway_cli("slugs", "--app", server.app).stdout
    assert listed.count(server.app) >= 2
    contents = shipway_cli("slugs:contents", "v4", "--long", cwd=work).stdout.splitlines()
    assert any(line.endswith(" app.py") and line.startswith("-rw-r--r--") for line in contents)
    assert shipway_cli("slugs:cat", "v4", "Procfile", cwd=work).stdout == "web: python3 app.py\n"
    dry = shipway_cli("slugs:prune", "--dry-run").stdout
    assert "keeping" in dry and "Would remove 0 slugs" in dry


def settled_ps(work: Path, release: str, count: int, seconds: float = 30.0) -> list[str]:
    """``shipway ps`` once only ``count`` dynos of ``release`` remain (old ones drain first)."""
    deadline = time.monotonic() + seconds
    while True:
        lines = shipway_cli("ps", cwd=work).stdout.splitlines()
        dynos = [line for line in lines if line.startswith("web.")]
        if len(dynos) == count and all(d.endswith(release) for d in dynos):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"ps never settled on {count} dynos of {release}: {lines}")
        time.sleep(0.5)


def test_release_commands_work_remotely(server: Server, tmp_path: Path) -> None:
    log_in(server)
    work = work_tree(tmp_path)
    shipway_cli("apps:create", server.app, cwd=work)
    pushed = run_git("push", "platform", "master", cwd=work, check=False)
    assert "remote: -----> Launching... done, v2" in pushed.stderr, pushed.stderr
    releases = shipway_cli("releases", "-a", server.app, cwd=work).stdout
    assert f"=== {server.app} Releases - Current: v2" in releases
    changed = shipway_cli("config:set", "GREETING=Hi", "-a", server.app, cwd=work).stdout
    assert f"Setting GREETING and restarting {server.app}... done, v3" in changed
    assert "-----> Launching... done, v3" in changed.splitlines()
    server.wait_for("Hi (release v3)")
    assert shipway_cli("config", cwd=work).stdout == f"=== {server.app} Config Vars\nGREETING: Hi\n"
    assert shipway_cli("config:get", "GREETING", cwd=work).stdout == "Hi\n"
    info = shipway_cli("releases:info", cwd=work).stdout.splitlines()
    assert info[:2] == ["=== Release v3", "Change:  Set GREETING config vars"]
    assert "-----> Launching... done, v3" in shipway_cli("releases:output", "v3",
                                                         cwd=work).stdout.splitlines()

    back = shipway_cli("rollback", "v2", "-a", server.app, cwd=work).stdout.splitlines()
    assert "Rolled back to v2" in back
    assert any("doesn't add or remove add-ons" in line for line in back)
    assert f"To undo, run: shipway rollback v3 -a {server.app}" in back
    server.wait_for("Hello (release v4)")
    rows = shipway_cli("releases", cwd=work).stdout.splitlines()
    assert rows[0] == f"=== {server.app} Releases - Current: v4"
    assert rows[1].startswith("v4  Rollback to v2")

    ps = settled_ps(work, "(v4)", count=1)
    assert ps[0] == "=== web (1): python3 app.py", ps
    assert ps[1].startswith("web.1: up ") and ps[1].endswith(" (v4)")
    scaled = shipway_cli("ps:scale", "web=2", cwd=work).stdout
    assert scaled == "Scaling dynos... done, now running web at 2\n"
    assert [line.split(":")[0] for line in settled_ps(work, "(v4)", count=2)
            if line.startswith("web.")] == ["web.1", "web.2"]
    assert shipway_cli("restart", cwd=work).stdout == f"Restarting dynos on {server.app}... done\n"
    server.wait_for("Hello (release v4)")
    logs = shipway_cli("logs", "-n", "50", cwd=work)
    assert logs.stdout.strip() and logs.stderr == ""

    wrong = shipway_cli("releases", "-a", "no-such-app", cwd=work, check_rc=1)
    assert wrong.stderr == " !    Couldn't find that app: no-such-app.\n" and wrong.stdout == ""
