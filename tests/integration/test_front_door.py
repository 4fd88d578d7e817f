"""The front door under attack: slow and idle clients, refused bodies, guessed tokens.

A real server on port 0 with the API, the real ``git`` client, raw sockets for the attacker.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import structlog

from shipway.accounts import Accounts
from shipway.api import make_api
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.log import configure
from shipway.server import RunningServer, start
from shipway.settings import Settings
from tests.conftest import run_git
from tests.integration.conftest import make_repo
from tests.integration.test_api_support import NoDocker

DEV = "dev@example.com"
RECEIVE_HEAD = (b"POST /demo.git/git-receive-pack HTTP/1.1\r\nHost: shipway\r\n"
                b"Content-Type: application/x-git-receive-pack-request\r\n")


@dataclass
class Door:
    layout: Layout
    server: RunningServer
    token: str

    @property
    def port(self) -> int:
        return self.server.port

    def remote(self, token: str | None = None) -> str:
        return (f"http://dev%40example.com:{token or self.token}@127.0.0.1:{self.port}"
                "/demo.git")


def _door(layout: Layout, **overrides: object) -> Door:
    settings = Settings(port=0, router_port=8080).with_overrides(**overrides)
    server = start(layout, settings, api=make_api(layout, settings, docker_factory=NoDocker))
    _, token = Accounts(layout).create_token(DEV)
    create_app(layout, "demo", DEV)
    return Door(layout, server, token)


@pytest.fixture
def door(layout: Layout, git_bin: str) -> Iterator[Door]:
    made = _door(layout, http_header_timeout=2.0)
    yield made
    made.server.stop()


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    """The server's structlog JSON lines, as ``shipway serve`` writes them."""
    stream = io.StringIO()
    configure(stream)
    yield stream
    structlog.reset_defaults()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_hundreds_of_slow_and_idle_clients_leave_pushes_and_api_calls_answering(
        door: Door, tmp_path: Path) -> None:
    attackers = []
    for i in range(300):
        sock = connect(door.port)
        if i % 3 == 1:
            sock.sendall(RECEIVE_HEAD)  # a head that never ends
        elif i % 3 == 2:
            sock.sendall(b"GET /api/apps HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        attackers.append(sock)
    try:
        work = make_repo(tmp_path / "work")
        started = time.monotonic()
        pushed = run_git("push", door.remote(), "master", cwd=work, timeout=20)
        push_seconds = time.monotonic() - started
        assert "-----> Received master" in pushed.stderr
        assert remote_ref_of(door) == run_git("rev-parse", "HEAD", cwd=work).stdout.strip()
        started = time.monotonic()
        account = requests.get(f"http://127.0.0.1:{door.port}/api/account",
                               auth=(DEV, door.token), timeout=10)
        api_seconds = time.monotonic() - started
        assert account.status_code == 200 and account.json()["email"] == DEV
        print(f"with 300 slow/idle clients: push {push_seconds:.2f}s, API {api_seconds:.3f}s")
    finally:
        for sock in attackers:
            sock.close()


def remote_ref_of(door: Door) -> str | None:
    found = run_git("--git-dir", str(door.layout.repo_path("demo")), "rev-parse", "--verify",
                    "-q", "refs/heads/master", cwd=door.layout.home, check=False)
    return found.stdout.strip() or None


def test_a_head_must_arrive_within_the_header_timeout_even_byte_by_byte(door: Door) -> None:
    idle = connect(door.port)
    trickle = connect(door.port)
    started = time.monotonic()
    trickle.sendall(b"GET /api/apps HTTP/1.1\r\n")

    def drip() -> None:
        # a header byte every 0.2 s: never idle, never finished
        with pytest.raises(OSError):
            for _ in range(100):
                trickle.sendall(b"X")
                time.sleep(0.2)

    dripper = threading.Thread(target=drip)
    dripper.start()
    answer = read_all(trickle)
    seconds = time.monotonic() - started
    dripper.join()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close" in answer
    assert 1.5 < seconds < 8, seconds
    assert read_all(idle).startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_an_unauthenticated_push_is_answered_before_its_body_and_never_read(door: Door) -> None:
    declared = 300 * 1024 * 1024
    sock = connect(door.port)
    sock.sendall(RECEIVE_HEAD + f"Content-Length: {declared}\r\n\r\n".encode())
    answer = read_all(sock)  # no body sent at all: the answer comes anyway, then the close
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"Connection: close" in answer
    assert answer.endswith(b"Authentication required: use your email and API token.\n")

    # wrong credentials while the body streams in: refused, closed, the rest never read
    sock = connect(door.port)
    sock.sendall(RECEIVE_HEAD + f"Content-Length: {declared}\r\n".encode()
                 + b"Authorization: Basic ZGV2QGV4YW1wbGUuY29tOnNocF93cm9uZw==\r\n\r\n")
    sent = 0
    chunk = b"\0" * (1 << 20)
    with pytest.raises(OSError):
        while sent < declared:
            sock.sendall(chunk)
            sent += len(chunk)
    assert sent < 64 * 1024 * 1024, f"the server took {sent} bytes of a refused body"
    sock.close()
    assert requests.get(f"http://127.0.0.1:{door.port}/api/account", auth=(DEV, door.token),
                        timeout=10).status_code == 200


def _get(port: int, source: str, user: str, token: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    conn.request("GET", "/api/apps", headers={"Authorization": f"Basic {basic}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def test_wrong_tokens_are_throttled_per_address_and_per_user(
        layout: Layout, server_log: io.StringIO) -> None:
    door = _door(layout, auth_max_failures=5, auth_failure_window=60.0)
    other = "other@example.com"
    _, other_token = Accounts(layout).create_token(other)
    try:
        answers = [_get(door.port, "127.0.0.2", DEV, f"shp_guess{i}") for i in range(8)]
        assert [a[0] for a in answers] == [401] * 5 + [429] * 3
        assert {a[2] for a in answers[:5]} == {json.dumps(
            {"id": "unauthorized", "message": "Invalid credentials provided."}, indent=2
        ).encode() + b"\n"}
        status, headers, body = answers[5]
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert json.loads(body)["id"] == "rate_limit"
        assert json.loads(body)["message"].startswith("Too many failed logins: try again in ")
        # the same user from a new address is throttled too (per user) ...
        assert _get(door.port, "127.0.0.3", DEV, "shp_guess9")[0] == 429
        # ... and that address, naming another user, is not
        assert _get(door.port, "127.0.0.3", other, "shp_guess10")[0] == 401
        assert _get(door.port, "127.0.0.4", other, other_token)[0] == 200
        # an address spraying many user names is throttled whatever name it gives
        for i in range(5):
            assert _get(door.port, "127.0.0.5", f"u{i}@example.com", "shp_x")[0] == 401
        assert _get(door.port, "127.0.0.5", "new@example.com", "shp_x")[0] == 429
        assert _get(door.port, "127.0.0.5", other, other_token)[0] == 429
        assert _get(door.port, "127.0.0.6", other, other_token)[0] == 200
    finally:
        door.server.stop()
    log = server_log.getvalue()
    assert '"auth.failed"' in log and '"auth.throttled"' in log
    assert "shp_guess" not in log and other_token not in log and "shp_x" not in log


def test_a_throttled_push_is_refused_with_429_and_moves_nothing(
        layout: Layout, git_bin: str, tmp_path: Path) -> None:
    door = _door(layout, auth_max_failures=2, auth_failure_window=60.0)
    try:
        work = make_repo(tmp_path / "work")
        for _ in range(2):
            wrong = run_git("push", door.remote("shp_wrong"), "master", cwd=work, check=False)
            assert wrong.returncode != 0
            assert "Authentication failed" in wrong.stderr or "401" in wrong.stderr
        throttled = run_git("push", door.remote(), "master", cwd=work, check=False)
        assert throttled.returncode != 0
        assert "429" in throttled.stderr
        assert "Too many failed logins: try again in" in throttled.stderr
        assert remote_ref_of(door) is None
    finally:
        door.server.stop()
