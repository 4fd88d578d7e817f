"""One-off dynos as a Heroku user types them: ``shipway run`` through a real server (the API and
its rendezvous), real Docker and the real CLI, under a pseudo-terminal and with pipes."""

from __future__ import annotations

import contextlib
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
    running = start_platform(layout, settings)
    try:
        yield Platform(layout, running, settings, app, token, stranger)
    finally:
        running.stop()
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
    assert denied.stderr.splitlines()[0] == f" !    You do not have access to the app {app}."

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
