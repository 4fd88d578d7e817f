"""One-off dynos as a Heroku user types them: ``shipway run`` through a real server (the API and
its rendezvous), real Docker and the real CLI, under a pseudo-terminal and with pipes."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from release.deploy import deploy
from release.testing import RecordedOutput, make_slug, remove_containers, web_app_files
from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.errors import ShipwayError
from shipway.layout import Layout
from shipway.rendezvous import RemoteAttachment
from shipway.server import RunningServer, start_platform
from shipway.settings import Settings
from tests.conftest import free_port
from tests.integration.test_api_support import shipway_cli

EMAIL = "dev@example.com"
STRANGER = "stranger@example.com"
RUNNING = re.compile(r"Running (?P<cmd>.+) on (?P<app>\S+)\.\.\. up, (?P<dyno>run\.\d+)")


@dataclass
class Platform:
    layout: Layout
    running: RunningServer
    settings: Settings
    app: str
    token: str
    stranger_token: str

    def oneoff_containers(self, docker: Any) -> list[Any]:
        return docker.containers.list(all=True, filters={"label": [
            "shipway.oneoff", f"shipway.app={self.app}"]})


@pytest.fixture
def platform(layout: Layout, docker_client: Any, stack_image: str) -> Iterator[Platform]:
    settings = Settings(port=0, router_port=free_port(), router_https_port=free_port(),
                        launch_boot_timeout=30.0, launch_stop_grace=2.0)
    layout.settings_file.write_text("[launch]\nstop_grace = 2\n")
    app = f"run-{secrets.token_hex(3)}"
    accounts = Accounts(layout)
    _, token = accounts.create_token(EMAIL)
    _, stranger = accounts.create_token(STRANGER)
    create_app(layout, app, EMAIL)
    slug = make_slug(layout, app, web_app_files("A"), {"web": "python3 app.py"})
    out = RecordedOutput()
    assert deploy(layout, settings, app=app, slug=slug, user=EMAIL, commit="a" * 40,
                  commit_description="first", output_path=None, out=out,
                  docker=docker_client).status == "succeeded", out.text
    platform = Platform(layout, start_platform(layout, settings), settings, app, token, stranger)
    try:
        yield platform
    finally:
        platform.running.stop()  # the one running now: a test may have restarted it
        remove_containers(docker_client, app)


def login(platform: Platform, token: str, email: str = EMAIL,
          env: dict[str, str] | None = None) -> None:
    shipway_cli("login", "--server", platform.running.url, "--email", email, "--token", token,
                env=env)


def read_until(fd: int, pattern: str, seconds: float = 30.0) -> str:
    """What the terminal shows until ``pattern`` (a regex) appears in it."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if re.search(pattern, seen.decode("utf-8", errors="replace")):
                return seen.decode("utf-8", errors="replace")
    raise AssertionError(f"never saw {pattern!r}; the terminal showed {seen!r}")


def run_in_pty(argv: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True, env=dict(os.environ))
    os.close(follower)
    return proc, leader


def test_run_attached_through_the_api_with_a_tty_pipes_and_exit_statuses(
        platform: Platform, docker_client: Any) -> None:
    login(platform, platform.token)
    app = platform.app

    piped = shipway_cli("run", "python3", "-a", app, input="print(6*7)\n")
    assert piped.stdout == "42\n"
    shown = RUNNING.search(piped.stderr)
    assert shown and shown["cmd"] == "python3" and shown["app"] == app, piped.stderr

    # the release's env, .profile.d sourced, --env on top, the dyno's own name; never a TTY
    env = shipway_cli("run", "echo", "$PROFILE_SOURCED", "$FOO", "$DYNO", "$SHIPWAY_RELEASE",
                      "-e", "FOO=bar", "-a", app, "--exit-code")
    words = env.stdout.split()
    assert words[:2] == ["yes", "bar"] and re.fullmatch(r"run\.\d+", words[2]), env.stdout
    assert words[3] == "v2"
    assert shipway_cli("run", "exit 3", "-a", app, check_rc=3).stdout == ""
    stderr = shipway_cli("run", "echo oops >&2; exit 0", "-a", app, "--no-tty")
    assert (stderr.stdout, stderr.stderr.splitlines()[-1]) == ("", "oops")

    proc, terminal = run_in_pty([sys.executable, "-m", "shipway.cli", "run", "bash",
                                 "-a", app])
    try:
        read_until(terminal, r"[$#] $")  # bash's prompt: it runs interactively, on a TTY
        os.write(terminal, b"tty -s && echo is-a-tty; echo answer-$((6*7))\r")
        screen = read_until(terminal, r"answer-42")
        assert "is-a-tty" in screen
        os.write(terminal, b"exit 5\r")
        assert proc.wait(timeout=30) == 5
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        os.close(terminal)

    assert platform.oneoff_containers(docker_client) == []  # each removed once it ended


def test_only_the_apps_people_attach_and_a_secret_works_once(platform: Platform,
                                                             tmp_path: Path) -> None:
    app = platform.app
    stranger_home = tmp_path / "stranger"
    stranger_home.mkdir()
    env = {"HOME": str(stranger_home), "XDG_CONFIG_HOME": str(stranger_home / ".config")}
    login(platform, platform.stranger_token, STRANGER, env=env)
    denied = shipway_cli("run", "echo hi", "-a", app, env=env, check_rc=1)
    # the same line as for a missing app: a stranger learns nothing of the name
    assert denied.stderr.splitlines()[0] == f" !    Couldn't find that app: {app}."

    answer = requests.post(f"{platform.running.url}/api/apps/{app}/dynos",
                           json={"command": "cat", "attach": True, "force_no_tty": True},
                           auth=(EMAIL, platform.token), timeout=60)
    assert answer.status_code == 201, answer.text
    url = answer.json()["attach_url"]
    assert url.startswith("rendezvous://127.0.0.1:")
    attachment = RemoteAttachment(url)
    with pytest.raises(ShipwayError, match="refused to attach"):
        RemoteAttachment(url)  # good once
    attachment.send(b"echoed back\n")
    attachment.close_stdin()
    assert b"".join(data for _, data in attachment.output()) == b"echoed back\n"
    assert attachment.exit_status() == 0
    attachment.close()
    forged = url.rsplit("/", 1)[0] + "/" + secrets.token_urlsafe(32)
    with pytest.raises(ShipwayError, match="refused to attach"):
        RemoteAttachment(forged)


def test_run_on_the_data_home(platform: Platform, docker_client: Any) -> None:
    home = str(platform.layout.home)
    piped = shipway_cli("--home", home, "run", "python3", "-a", platform.app,
                        input="print(6*7)\n")
    assert piped.stdout == "42\n"
    assert shipway_cli("--home", home, "run", "exit 3", "-a", platform.app,
                       check_rc=3).stdout == ""
    missing = shipway_cli("--home", home, "run", "true", "-a", "no-such-app", check_rc=1)
    assert missing.stderr.startswith(" !    Couldn't find that app: no-such-app.")
    assert platform.oneoff_containers(docker_client) == []


HEROKU_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 "
                         r"(app|shipway)\[(?P<dyno>[a-z]+\.\d+)\]: ")


def wait_for_lines(argv: list[str], text: str, seconds: float = 30.0) -> str:
    deadline = time.monotonic() + seconds
    shown = ""
    while time.monotonic() < deadline:
        shown = shipway_cli(*argv).stdout
        if text in shown:
            return shown
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never showed up in {argv}: {shown!r}")


def test_run_detached_ps_stop_and_logs_by_dyno(platform: Platform, docker_client: Any) -> None:
    login(platform, platform.token)
    app = platform.app
    started = shipway_cli("run:detached", "echo hello-detached; echo bye-detached >&2", "-a", app)
    name = re.search(r"done, (run\.\d+)", started.stdout)
    assert name, started.stdout
    dyno = name[1]
    assert f"Run shipway logs -a {app} -p {dyno} to view the output." in started.stdout
    # it ends, is removed (the reaper keeps its output), and its lines stay in the log
    shown = wait_for_lines(["logs", "-a", app, "-p", dyno], "bye-detached")
    lines = shown.splitlines()
    assert all(HEROKU_LINE.match(line) and HEROKU_LINE.match(line)["dyno"] == dyno
               for line in lines), lines
    assert any(line.endswith(f" app[{dyno}]: hello-detached") for line in lines), lines
    assert any(line.endswith(f" shipway[{dyno}]: Starting process with command "
                             f"`echo hello-detached; echo bye-detached >&2` by user {EMAIL}")
               for line in lines), lines
    deadline = time.monotonic() + 20
    while platform.oneoff_containers(docker_client) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert platform.oneoff_containers(docker_client) == []

    # a long one shows in ps with its command, then ps:stop ends it
    started = shipway_cli("run:detached", "sleep 300", "-a", app)
    dyno = re.search(r"done, (run\.\d+)", started.stdout)[1]  # type: ignore[index]
    ps = shipway_cli("ps", "-a", app).stdout.splitlines()
    assert ps[0] == "=== web (1): python3 app.py"
    assert ps[1].startswith("web.1: up ") and ps[1].endswith(" (v2)")
    assert "=== run: one-off processes (1)" in ps
    assert any(re.fullmatch(rf"{dyno}: up \d+s \(v2\): sleep 300", line) for line in ps), ps
    as_json = json.loads(shipway_cli("ps", "-a", app, "--json").stdout)
    assert [(d["name"], d["command"]) for d in as_json] == [("web.1", ""),
                                                            (dyno, "sleep 300")]
    stopped = shipway_cli("ps:stop", dyno, "-a", app)
    assert stopped.stdout == f"Stopping {dyno} dyno on {app}... done\n"
    assert "=== run" not in shipway_cli("ps", "-a", app).stdout
    assert platform.oneoff_containers(docker_client) == []
    missing = shipway_cli("ps:stop", "run.1", "-a", app, check_rc=1)
    assert missing.stderr.splitlines()[0] == f" !    No such dyno run.1 on {app}."


def test_run_timeout_stops_a_detached_dyno(platform: Platform, docker_client: Any) -> None:
    from release.oneoff import reap

    login(platform, platform.token)
    app = platform.app
    dyno = re.search(r"done, (run\.\d+)",  # type: ignore[index]
                     shipway_cli("run:detached", "sleep 300", "-a", app).stdout)[1]
    time.sleep(2.5)
    short = Settings(run_timeout=1.0, launch_stop_grace=1.0)
    assert reap(platform.layout, short, docker=docker_client) == [f"{app}/{dyno}"]
    assert platform.oneoff_containers(docker_client) == []
    shown = shipway_cli("logs", "-a", app, "-p", dyno, "-s", "shipway").stdout
    assert "Stopping process: run.timeout of 1 s reached" in shown
    assert shown.splitlines()[-1].endswith(f"shipway[{dyno}]: State changed from up to complete")


def test_ps_stop_restart_and_ps_right_after(platform: Platform, docker_client: Any) -> None:
    login(platform, platform.token)
    app = platform.app

    def web_ids() -> set[str]:
        return {c.id for c in docker_client.containers.list(filters={"label": [
            f"shipway.app={app}", "shipway.dyno=web.1"]})}

    before = web_ids()
    restarted = shipway_cli("ps:restart", "web", "-a", app)
    assert restarted.stdout == f"Restarting web dynos on {app}... done\n"
    # the old web.1 still drains for a while: ps counts only the current release's one
    ps = shipway_cli("ps", "-a", app).stdout.splitlines()
    assert ps[0] == "=== web (1): python3 app.py" and len(
        [line for line in ps if line.startswith("web.")]) == 1, ps
    after = web_ids() - before
    assert len(after) == 1
    assert shipway_cli("restart", "web.1", "-a", app).stdout == \
        f"Restarting web.1 dyno on {app}... done\n"
    assert shipway_cli("ps:stop", "web.1", "-a", app).stdout == \
        f"Stopping web.1 dyno on {app}... done\n"
    ps = shipway_cli("ps", "-a", app).stdout.splitlines()
    assert ps[:2][0] == "=== web (1): python3 app.py" and ps[1].startswith("web.1: up ")
    nope = shipway_cli("ps:restart", "worker", "-a", app, check_rc=1)
    assert nope.stderr.splitlines()[0] == f" !    No such dyno or process type worker on {app}."
    shown = shipway_cli("logs", "-a", app, "-s", "shipway", "-p", "web").stdout.splitlines()
    assert shown and all(" shipway[web.1]: " in line for line in shown)
    assert any(line.endswith("Stopping all processes with SIGTERM") for line in shown)
    app_lines = shipway_cli("logs", "-a", app, "-s", "app", "-n", "1").stdout.splitlines()
    assert len(app_lines) == 1 and HEROKU_LINE.match(app_lines[0]), app_lines
    assert app_lines[0].endswith(" app[web.1]: booting A on 5000")


def test_ps_exec_in_a_running_dyno(platform: Platform, docker_client: Any) -> None:
    login(platform, platform.token)
    app = platform.app
    piped = shipway_cli("ps:exec", "-d", "web.1", "echo $DYNO $PROFILE_SOURCED; exit 4",
                        "-a", app, check_rc=4)
    assert piped.stdout == "web.1 yes\n"
    assert f"Connecting to web.1 on {app}..." in piped.stderr
    local = shipway_cli("--home", str(platform.layout.home), "ps:exec", "cat", "-a", app,
                        input="through stdin\n")
    assert local.stdout == "through stdin\n"
    proc, terminal = run_in_pty([sys.executable, "-m", "shipway.cli", "ps:exec", "-a", app])
    try:
        read_until(terminal, r"[$#] $")
        os.write(terminal, b"echo in-$DYNO\r")
        read_until(terminal, r"in-web\.1")
        os.write(terminal, b"exit\r")
        assert proc.wait(timeout=30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        os.close(terminal)
    missing = shipway_cli("ps:exec", "-d", "worker.1", "true", "-a", app, check_rc=1)
    assert missing.stderr.splitlines()[0] == f" !    No running dyno worker.1 on {app}."
    ps = shipway_cli("ps", "-a", app).stdout.splitlines()
    assert ps[0] == "=== web (1): python3 app.py"  # the dyno is still the one it was


def test_a_server_restart_reaps_one_offs_that_ended_or_lost_their_terminal(
        platform: Platform, docker_client: Any) -> None:
    login(platform, platform.token)
    app = platform.app
    answer = requests.post(f"{platform.running.url}/api/apps/{app}/dynos",
                           json={"command": "bash", "attach": True},
                           auth=(EMAIL, platform.token), timeout=60)
    assert answer.status_code == 201
    assert len(platform.oneoff_containers(docker_client)) == 1  # waiting for its terminal
    platform.running.stop()
    assert platform.oneoff_containers(docker_client) == []  # nobody will ever attach
    home = str(platform.layout.home)
    started = shipway_cli("--home", home, "run:detached", "echo while-down", "-a", app)
    dyno = re.search(r"done, (run\.\d+)", started.stdout)[1]  # type: ignore[index]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(
            c.status != "exited" for c in platform.oneoff_containers(docker_client)):
        time.sleep(0.2)
    platform.running = start_platform(platform.layout, platform.settings)
    assert platform.oneoff_containers(docker_client) == []
    shown = shipway_cli("--home", home, "logs", "-a", app, "-p", dyno).stdout
    assert f" app[{dyno}]: while-down" in shown


def test_maintenance_on_and_off_through_the_router(platform: Platform,
                                                   docker_client: Any) -> None:
    from release.testing import fetch

    login(platform, platform.token)
    app, port = platform.app, platform.settings.router_port
    assert fetch(port, app)[0] == 200
    assert shipway_cli("maintenance", "-a", app).stdout == "off\n"
    assert shipway_cli("maintenance:on", "-a", app).stdout == \
        f"Enabling maintenance mode for {app}... done\n"
    status, body = fetch(port, app)
    assert status == 503 and "Offline for Maintenance" in body
    assert shipway_cli("maintenance", "-a", app).stdout == "on\n"
    info = requests.get(f"{platform.running.url}/api/apps/{app}", auth=(EMAIL, platform.token),
                        timeout=30).json()
    assert info["maintenance"] is True
    assert shipway_cli("ps", "-a", app).stdout.splitlines()[1].startswith("web.1: up ")
    home = str(platform.layout.home)
    assert shipway_cli("--home", home, "maintenance", "-a", app).stdout == "on\n"
    assert shipway_cli("--home", home, "maintenance:off", "-a", app).stdout == \
        f"Disabling maintenance mode for {app}... done\n"
    assert fetch(port, app) == (200, "A v2 web.1 profile=yes greeting=")
    assert shipway_cli("maintenance", "-a", app).stdout == "off\n"
    missing = shipway_cli("maintenance:on", "-a", "no-such-app", check_rc=1)
    assert missing.stderr == " !    Couldn't find that app: no-such-app.\n"


def test_releases_retry_runs_the_release_phase_again(platform: Platform,
                                                      docker_client: Any) -> None:
    login(platform, platform.token)
    none = shipway_cli("releases:retry", "-a", platform.app, check_rc=1)
    assert none.stderr.splitlines()[0] == (" !    v2 has no release phase to retry: its "
                                           "Procfile declares no release process.")
    app = f"retry-{secrets.token_hex(3)}"
    create_app(platform.layout, app, EMAIL)
    try:
        slug = make_slug(platform.layout, app, web_app_files("R"),
                         {"web": "python3 app.py", "release": "echo releasing $SHIPWAY_RELEASE"})
        out = RecordedOutput()
        assert deploy(platform.layout, platform.settings, app=app, slug=slug, user=EMAIL,
                      commit="b" * 40, commit_description="first", output_path=None, out=out,
                      docker=docker_client).status == "succeeded", out.text
        retried = shipway_cli("releases:retry", "-a", app)
        lines = retried.stdout.splitlines()
        assert "-----> Running release command..." in lines
        assert "       releasing v3" in lines
        assert "-----> Launching... done, v3" in lines
        listed = shipway_cli("releases", "-a", app).stdout.splitlines()
        assert listed[0] == f"=== {app} Releases - Current: v3"
        assert listed[1].startswith("v3  Retry of v2: Deploy bbbbbbb")
        local = shipway_cli("--home", str(platform.layout.home), "releases:retry", "-a", app)
        assert "       releasing v4" in local.stdout.splitlines()
    finally:
        remove_containers(docker_client, app)
