"""Shared bench helpers: a platform in a temp home, git, structlog capture, tables, cleanup.

Every bench prints Markdown tables (``bench/run_all.py`` copies them into ``bench/RESULTS.md``)
and one ``Target: ... MET|MISSED`` line per target.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shipway.accounts import Accounts  # noqa: E402
from shipway.apps import create_app  # noqa: E402
from shipway.layout import Layout  # noqa: E402
from shipway.log import configure  # noqa: E402
from shipway.server import RunningServer, start, start_platform  # noqa: E402
from shipway.settings import Settings  # noqa: E402

EXAMPLES = ROOT / "examples"
EMAIL = "bench@example.com"
STACK_IMAGE = "shipway/stack:forky-1"  # builder.stack.STACK_NAME: the default Python's stack

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": EMAIL,
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": EMAIL,
}


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ENV)
    return env


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env=git_env())
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def app_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


# structlog events ------------------------------------------------------------------------
class EventLog(io.TextIOBase):
    """A text stream for ``shipway.log.configure``: keeps every JSON event, thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending = ""
        self.events: list[dict[str, Any]] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    stamp = event.get("timestamp")
                    if stamp:
                        event["t"] = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                    self.events.append(event)
        return len(text)

    def find(self, name: str, *, after: float = 0.0, **match: Any) -> dict[str, Any] | None:
        with self._lock:
            for event in self.events:
                if event.get("event") != name or event.get("t", 0.0) < after:
                    continue
                if all(event.get(k) == v for k, v in match.items()):
                    return event
        return None


# platforms --------------------------------------------------------------------------------
@dataclass
class Bench:
    """A Shipway home in a temp dir with a running server and a token."""

    home: Path
    layout: Layout
    settings: Settings
    server: RunningServer
    token: str
    events: EventLog
    apps: list[str] = field(default_factory=list)

    def remote(self, app: str) -> str:
        who = EMAIL.replace("@", "%40")
        return f"http://{who}:{self.token}@127.0.0.1:{self.server.port}/{app}.git"

    def create_app(self, prefix: str) -> str:
        name = app_name(prefix)
        create_app(self.layout, name, EMAIL)
        self.apps.append(name)
        return name

    def get(self, app: str, timeout: float = 2.0) -> tuple[int, str]:
        return http_get(self.settings.router_port, f"{app}.localhost", timeout)


def http_get(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        conn.close()


def wait_for_body(port: int, host: str, needle: str, *, timeout: float = 60.0,
                  interval: float = 0.01) -> float:
    """Poll until a 200 whose body holds ``needle``; returns time.time() of that answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_get(port, host, timeout=2.0)
        if status == 200 and needle in body:
            return time.time()
        time.sleep(interval)
    raise TimeoutError(f"no 200 with {needle!r} from {host} within {timeout:g}s")


@contextlib.contextmanager
def platform(*, full: bool = True, **overrides: Any) -> Iterator[Bench]:
    """Start Shipway (everything, or only the git endpoint) in a temp home; clean up after."""
    events = EventLog()
    configure(events)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-") as tmp:
        home = Path(tmp) / "home"
        layout = Layout(home)
        values: dict[str, Any] = {"port": 0, "router_port": free_port(),
                                  "launch_boot_timeout": 60.0, "launch_stop_grace": 2.0}
        values.update(overrides)
        settings = Settings(**values)
        server = start_platform(layout, settings) if full else start(layout, settings)
        _, token = Accounts(layout).create_token(EMAIL)
        bench = Bench(home, layout, settings, server, token, events)
        try:
            yield bench
        finally:
            server.stop()
            if full:
                remove_containers(bench.apps)
                remove_slug_images(layout)


def docker_client() -> Any:
    import docker

    return docker.from_env()


def remove_containers(apps: Sequence[str]) -> None:
    client = docker_client()
    try:
        for app in apps:
            for c in client.containers.list(all=True, filters={"label": f"shipway.app={app}"}):
                with contextlib.suppress(Exception):
                    c.remove(force=True)
    finally:
        client.close()


def remove_slug_images(layout: Layout) -> None:
    """Remove the slug volumes of this bench's slugs only (other runs may share the engine)."""
    from builder.slug import SlugArchive

    slugs = set(SlugArchive(layout).ids()) if layout.slugs_dir.exists() else set()
    client = docker_client()
    try:
        for volume in client.volumes.list(filters={"label": "shipway.slug"}):
            slug = (volume.attrs.get("Labels") or {}).get("shipway.slug", "")
            if slug in slugs:
                with contextlib.suppress(Exception):
                    volume.remove(force=True)
    finally:
        client.close()


def ensure_stack_image() -> None:
    from builder.stack import ensure_stack

    class Quiet:
        def line(self, text: str) -> None:
            pass

        def error(self, text: str) -> None:
            print(text, file=sys.stderr)

    client = docker_client()
    try:
        ensure_stack(Settings(), docker=client, out=Quiet(), variant="build")
    finally:
        client.close()


# work trees -------------------------------------------------------------------------------
def example_tree(root: Path, example: str) -> Path:
    """A git work tree of an example, with a random note so its slugs are this run's own."""
    work = root / example
    shutil.copytree(EXAMPLES / example, work)
    (work / "BENCH_NOTE").write_text(secrets.token_hex(8) + "\n")
    git("init", "-q", "-b", "master", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", f"{example} example", cwd=work)
    return work


def new_commit(work: Path, note: str) -> str:
    (work / "BENCH_NOTE").write_text(f"{note} {secrets.token_hex(8)}\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", f"bench: {note}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).stdout.strip()


@dataclass
class PushResult:
    started: float
    ended: float
    returncode: int
    lines: list[tuple[float, str]]

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def line_time(self, needle: str) -> float | None:
        for t, line in self.lines:
            if needle in line:
                return t
        return None

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)


def push(work: Path, remote: str, ref: str = "master", *extra: str) -> PushResult:
    """``git push`` with each stderr line time-stamped as it arrives."""
    started = time.time()
    proc = subprocess.Popen(["git", "push", *extra, remote, ref], cwd=work, env=git_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: list[tuple[float, str]] = []
    assert proc.stderr is not None
    pending = b""
    while True:
        chunk = proc.stderr.read1(65536)
        if not chunk:
            break
        pending += chunk
        *done, pending = pending.replace(b"\r", b"\n").split(b"\n")
        now = time.time()
        lines.extend((now, d.decode("utf-8", "replace")) for d in done if d.strip())
    code = proc.wait()
    return PushResult(started, time.time(), code, lines)


# numbers and tables -----------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def target(text: str, met: bool) -> str:
    return f"Target: {text}: {'MET' if met else 'MISSED'}"


def peak_rss_kb(pid: int) -> int:
    """VmHWM of a live process (kB)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                with contextlib.suppress(OSError):
                    kids = [int(k) for k in (task / "children").read_text().split()]
                    found.extend(kids)
                    pending.extend(kids)
    return found


class TreeRss:
    """Samples the RSS of a process and all its children (e.g. git index-pack) every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(_status_kb(p, "VmRSS") for p in [self.pid, *descendants(self.pid)])
            self.peak_kb = max(self.peak_kb, total)
            time.sleep(0.05)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
