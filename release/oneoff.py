"""One-off dynos (``shipway run``): a command in a fresh dyno of the app's current release.

A one-off dyno starts from the same options as a formation dyno (``launch.dyno_options``: the
slug volume, the stack, config vars, add-on mounts, limits; ``.profile.d`` sourced by the same
entrypoint), is never routed, and is named ``run.N``. It carries ``shipway.oneoff=run.N`` in
place of ``shipway.dyno``, so the formation's reconciler never counts or stops it.

Attached (``Session``): created with stdin open (a TTY when asked), attached before it starts
so no output is lost, removed once its exit status is known. Detached: started, its output
kept by Docker until it ends; ``reap`` (the server's ``OneOffReaper``, and every server start)
then copies its log lines to ``logs/oneoff/APP.log`` and removes it. ``run.timeout`` stops any
one-off dyno that runs longer.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from builder.slug import SlugArchive
from release import dynolog
from release.launch import (
    APP_UID,
    ENTRYPOINT,
    LABEL_APP,
    LABEL_DYNO,
    LABEL_HOME,
    LABEL_PROCESS,
    LABEL_RELEASE,
    Dyno,
    app_containers,
    dyno_options,
    list_containers,
    slug_image,
)
from release.records import Release
from release.store import ReleaseStore
from shipway import log
from shipway.errors import Conflict, NotFound, UsageError
from shipway.layout import Layout
from shipway.names import check_config_key
from shipway.settings import Settings

LABEL_ONEOFF = "shipway.oneoff"
LABEL_OWNER = "shipway.oneoff-owner"  # pid of the process holding an attached dyno's terminal
ONEOFF_TYPE = "run"
STDOUT, STDERR = 1, 2
# Docker's default detach keys (ctrl-p ctrl-q) would swallow readline's ctrl-p
DETACH_KEYS = "ctrl-@,ctrl-@,ctrl-@,ctrl-@"
REAP_INTERVAL = 5.0


class _Quiet:
    def line(self, text: str) -> None:
        pass

    def error(self, text: str) -> None:
        pass


class Attachment(Protocol):
    """A running command's terminal, local (``Session``) or through the rendezvous."""

    def send(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def resize(self, rows: int, cols: int) -> None: ...
    def output(self) -> Iterator[tuple[int, bytes]]: ...
    def exit_status(self) -> int: ...
    def close(self) -> None: ...


# which dynos -----------------------------------------------------------------------------------
def oneoff_containers(docker: Any, layout: Layout, app: str | None = None) -> list[Any]:
    labels = [LABEL_ONEOFF, f"{LABEL_HOME}={layout.home}"]
    if app is not None:
        labels.append(f"{LABEL_APP}={app}")
    return list_containers(docker, filters={"label": labels})


def oneoff_of(container: Any) -> Dyno:
    labels = container.labels
    name = labels.get(LABEL_ONEOFF, "run.0")
    index = name.rpartition(".")[2]
    state = container.attrs.get("State") or {}
    cmd = (container.attrs.get("Config") or {}).get("Cmd") or [""]
    return Dyno(
        id=container.id, app=labels.get(LABEL_APP, ""),
        release=int(labels.get(LABEL_RELEASE, "0") or 0), process_type=ONEOFF_TYPE,
        index=int(index) if index.isdigit() else 0,
        state=str(state.get("Status", container.status)),
        started_at=str(state.get("StartedAt", "")), host_port=None, command=str(cmd[0]),
    )


def oneoffs(docker: Any, layout: Layout, app: str) -> list[Dyno]:
    """The app's one-off dynos that are still running (``ps``)."""
    found = [oneoff_of(c) for c in oneoff_containers(docker, layout, app)]
    return sorted((d for d in found if d.state in ("created", "running")), key=lambda d: d.index)


def find(docker: Any, layout: Layout, app: str, name: str) -> Any:
    for container in oneoff_containers(docker, layout, app):
        if container.labels.get(LABEL_ONEOFF) == name:
            return container
    raise NotFound(f"No such dyno {name} on {app}.", hint=f"See shipway ps -a {app}.")


def _free_name(docker: Any, layout: Layout, app: str) -> str:
    taken = {c.labels.get(LABEL_ONEOFF) for c in oneoff_containers(docker, layout, app)}
    pick = random.SystemRandom()
    while True:
        name = f"{ONEOFF_TYPE}.{pick.randint(1000, 9999)}"
        if name not in taken:
            return name


# creating one ---------------------------------------------------------------------------------
def parse_env(pairs: list[str]) -> dict[str, str]:
    """``--env K=V`` (repeatable, or ``K=V;K2=V2`` as Heroku takes it)."""
    found: dict[str, str] = {}
    for pair in pairs:
        for item in filter(None, pair.split(";")):
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--env {item!r} is not KEY=VALUE.")
            found[check_config_key(key.strip())] = value
    return found


def current_release(layout: Layout, app: str) -> Release:
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    current = ReleaseStore(layout).current(app)
    if current is None or not current.slug:
        raise Conflict(f"{app} has no deployed code yet: push to deploy first.",
                       hint="git push platform main, then run the command again.")
    return current


def create(layout: Layout, settings: Settings, *, app: str, command: str,
           env: Mapping[str, str] | None = None, attach: bool, tty: bool = False,
           docker: Any, user: str = "", release: Release | None = None) -> Any:
    """A one-off dyno of the current release (created, not started)."""
    if not command.strip():
        raise UsageError("Usage: shipway run COMMAND [ARGS...] -a APP")
    current = release or current_release(layout, app)
    slug = SlugArchive(layout).get(current.slug)
    image = slug_image(layout, settings, slug, docker=docker, out=_Quiet())
    name = _free_name(docker, layout, app)
    options = dyno_options(layout, settings, image, current, ONEOFF_TYPE,
                           int(name.rpartition(".")[2]), command)
    # docker-py sets StdinOnce (EOF on stdin reaches the command) for an attached create
    options["detach"] = not attach
    labels = dict(options["labels"])
    labels.pop(LABEL_DYNO, None)
    labels[LABEL_ONEOFF] = name
    labels[LABEL_PROCESS] = ONEOFF_TYPE
    if attach:
        labels[LABEL_OWNER] = str(os.getpid())
    options["labels"] = labels
    options["environment"] = {**options["environment"], **(env or {})}
    options["ports"] = {}
    options["name"] = f"shipway-{app}-{current.name}-{name}-{os.urandom(3).hex()}"
    if attach:
        options.update(stdin_open=True, tty=tty)
    container = docker.containers.create(**options)
    by = f" by user {user}" if user else ""
    dynolog.record(layout, app, name, f"Starting process with command `{command}`{by}")
    log.get(app=app, release=current.version).info("oneoff_created", dyno=name,
                                                   attached=attach)
    return container


def start_detached(layout: Layout, settings: Settings, *, app: str, command: str,
                   env: Mapping[str, str] | None = None, docker: Any, user: str = "") -> str:
    """``run:detached``: start it and return its name; its output goes to the app's log."""
    container = create(layout, settings, app=app, command=command, env=env, attach=False,
                       docker=docker, user=user)
    try:
        container.start()
    except BaseException:
        with contextlib.suppress(Exception):
            container.remove(force=True)
        raise
    name = str(container.labels[LABEL_ONEOFF])
    dynolog.record(layout, app, name, "State changed from starting to up")
    return name


def stop(layout: Layout, settings: Settings, *, app: str, name: str, docker: Any) -> None:
    """``ps:stop run.N``: SIGTERM, the stop grace, SIGKILL; the reaper removes it."""
    container = find(docker, layout, app, name)
    dynolog.record(layout, app, name, "Stopping all processes with SIGTERM")
    with contextlib.suppress(Exception):
        container.stop(timeout=int(settings.launch_stop_grace))
    reap_one(layout, container)


# an attached session --------------------------------------------------------------------------
class Session:
    """A created one-off dyno attached to a terminal: stdin in, output out, then its status."""

    def __init__(self, layout: Layout, settings: Settings, container: Any, *, docker: Any,
                 tty: bool, on_close: Callable[[], None] | None = None) -> None:
        self.layout, self.settings, self.docker = layout, settings, docker
        self.on_close = on_close
        self.container, self.tty = container, tty
        self.app = str(container.labels.get(LABEL_APP, ""))
        self.name = str(container.labels.get(LABEL_ONEOFF, ""))
        self._sock: Any = None
        self._raw: Any = None
        self._status: int | None = None
        self._timer: threading.Timer | None = None
        self._closed = False

    def start(self) -> Session:
        self._sock = self.docker.api.attach_socket(
            self.container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1,
                                       "detachKeys": DETACH_KEYS})
        self._raw = getattr(self._sock, "_sock", self._sock)
        try:
            self.container.start()
        except BaseException:
            self.close()
            raise
        dynolog.record(self.layout, self.app, self.name, "State changed from starting to up")
        self._timer = threading.Timer(self.settings.run_timeout, self._timed_out)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _timed_out(self) -> None:
        dynolog.record(self.layout, self.app, self.name,
                       f"Stopping process: run.timeout of {self.settings.run_timeout:g} s reached")
        with contextlib.suppress(Exception):
            self.container.kill()

    def send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self._raw.sendall(data)

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._raw.shutdown(socket.SHUT_WR)  # with stdin_once, the command reads EOF

    def resize(self, rows: int, cols: int) -> None:
        if self.tty and rows > 0 and cols > 0:
            with contextlib.suppress(Exception):
                self.docker.api.resize(self.container.id, height=rows, width=cols)

    def _recv(self, size: int) -> bytes:
        try:
            return bytes(self._raw.recv(size))
        except OSError:
            return b""

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._recv(size - len(data))
            if not chunk:
                return b""
            data += chunk
        return data

    def output(self) -> Iterator[tuple[int, bytes]]:
        """What the command writes, until it ends: a TTY's bytes, or Docker's framed streams."""
        if self.tty:
            while chunk := self._recv(1 << 16):
                yield STDOUT, chunk
            return
        while header := self._exactly(8):
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = self._exactly(size) if size else b""
            if size and not payload:
                return
            yield (STDERR if stream == 2 else STDOUT), payload

    def exit_status(self) -> int:
        if self._status is None:
            try:
                result = self.container.wait(timeout=self.settings.launch_stop_grace + 30)
                self._status = int(result.get("StatusCode", 1))
            except Exception:  # noqa: BLE001 - gone or hung: not a success
                self._status = 1
            self.close()
        return self._status

    def close(self) -> None:
        """End the session: the dyno is removed (killed first if it still runs)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        with contextlib.suppress(Exception):
            if self._sock is not None:
                self._sock.close()
        status = self._status
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        if status is not None:
            dynolog.record(self.layout, self.app, self.name, f"Process exited with status {status}")
        dynolog.record(self.layout, self.app, self.name, "State changed from up to complete")
        if self.on_close is not None:
            with contextlib.suppress(Exception):
                self.on_close()


class ExecSession(Session):
    """``ps:exec``: a command inside a running dyno, attached like ``run``; the dyno stays."""

    def __init__(self, layout: Layout, settings: Settings, container: Any, *, docker: Any,
                 tty: bool, command: str, on_close: Callable[[], None] | None = None) -> None:
        super().__init__(layout, settings, container, docker=docker, tty=tty, on_close=on_close)
        self.name = str(container.labels.get(LABEL_DYNO) or container.labels.get(LABEL_ONEOFF))
        self.command = command
        self._exec_id = ""

    def start(self) -> ExecSession:
        created = self.docker.api.exec_create(
            self.container.id, [*ENTRYPOINT, self.command], stdin=True, tty=self.tty,
            user=APP_UID, workdir="/app")
        self._exec_id = str(created["Id"])
        self._sock = self.docker.api.exec_start(self._exec_id, tty=self.tty, socket=True)
        self._raw = getattr(self._sock, "_sock", self._sock)
        dynolog.record(self.layout, self.app, self.name,
                       f"Running `{self.command}` in the dyno (ps:exec)")
        return self

    def resize(self, rows: int, cols: int) -> None:
        if self.tty and rows > 0 and cols > 0:
            with contextlib.suppress(Exception):
                self.docker.api.exec_resize(self._exec_id, height=rows, width=cols)

    def exit_status(self) -> int:
        if self._status is None:
            deadline = time.monotonic() + 10
            code = None
            while code is None and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    code = self.docker.api.exec_inspect(self._exec_id).get("ExitCode")
                if code is None:
                    time.sleep(0.1)
            self._status = int(code) if code is not None else 1
            self.close()
        return self._status

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if self._sock is not None:
                self._sock.close()
        if self.on_close is not None:
            with contextlib.suppress(Exception):
                self.on_close()


def running_dyno(docker: Any, layout: Layout, app: str, name: str) -> Any:
    """The running container of dyno ``web.1`` (the current one) or ``run.N``."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    found = [c for c in app_containers(docker, app, layout=layout)
             if c.labels.get(LABEL_DYNO) == name and c.status == "running"
             and not dynolog.is_stopping(layout, c.id)]
    found += [c for c in oneoff_containers(docker, layout, app)
              if c.labels.get(LABEL_ONEOFF) == name and c.status == "running"]
    if not found:
        raise NotFound(f"No running dyno {name} on {app}.", hint=f"See shipway ps -a {app}.")
    return max(found, key=lambda c: int(c.labels.get(LABEL_RELEASE, "0") or 0))


def exec_in(layout: Layout, settings: Settings, *, app: str, dyno: str, command: str,
            tty: bool, docker: Any, on_close: Callable[[], None] | None = None) -> ExecSession:
    container = running_dyno(docker, layout, app, dyno)
    return ExecSession(layout, settings, container, docker=docker, tty=tty, command=command,
                       on_close=on_close).start()


def attach(layout: Layout, settings: Settings, *, app: str, command: str,
           env: Mapping[str, str] | None = None, tty: bool, docker: Any, user: str = "",
           on_close: Callable[[], None] | None = None) -> Session:
    """Create and start an attached one-off dyno (``shipway run`` on the data home)."""
    container = create(layout, settings, app=app, command=command, env=env, attach=True,
                       tty=tty, docker=docker, user=user)
    return Session(layout, settings, container, docker=docker, tty=tty,
                   on_close=on_close).start()


# ended, orphaned and timed-out ones -----------------------------------------------------------
def oneoff_log(layout: Layout, app: str) -> Path:
    return layout.logs_dir / "oneoff" / f"{layout.app_dir(app).name}.log"


def _keep_logs(layout: Layout, container: Any) -> None:
    """An ended detached dyno's output, as ``TIME app[run.N]: line``, before it is removed."""
    app, name = container.labels.get(LABEL_APP, ""), container.labels.get(LABEL_ONEOFF, "")
    try:
        text = container.logs(stdout=True, stderr=True, timestamps=True)
    except Exception:  # noqa: BLE001 - gone already
        return
    lines = []
    for raw in text.decode("utf-8", errors="replace").splitlines():
        stamp, _, line = raw.partition(" ")
        lines.append(f"{dynolog.from_docker(stamp)} app[{name}]: {line}\n")
    if lines:
        path = oneoff_log(layout, app)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(lines))


def _owner_alive(container: Any) -> bool:
    pid = str(container.labels.get(LABEL_OWNER, ""))
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _age(container: Any) -> float:
    started = str((container.attrs.get("State") or {}).get("StartedAt", ""))[:19]
    try:
        then = datetime.strptime(started, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return (datetime.now(UTC) - then).total_seconds()


def reap_one(layout: Layout, container: Any) -> None:
    """Keep an ended dyno's output and remove it."""
    with contextlib.suppress(Exception):
        container.reload()
    state = container.attrs.get("State") or {}
    app, name = container.labels.get(LABEL_APP, ""), container.labels.get(LABEL_ONEOFF, "")
    if LABEL_OWNER not in container.labels:
        _keep_logs(layout, container)
    with contextlib.suppress(Exception):
        container.remove(force=True)
    if state.get("Status") in ("exited", "dead"):
        dynolog.record(layout, app, name, f"Process exited with status {state.get('ExitCode')}")
    dynolog.record(layout, app, name, "State changed from up to complete")


def reap(layout: Layout, settings: Settings, *, docker: Any) -> list[str]:
    """Remove one-off dynos that ended, whose terminal is gone, or ran past ``run.timeout``."""
    reaped = []
    known = set()
    if layout.apps_dir.is_dir():
        known = {p.name for p in layout.apps_dir.iterdir() if (p / "app.toml").exists()}
    for container in oneoff_containers(docker, layout):
        state = (container.attrs.get("State") or {}).get("Status", container.status)
        attached = LABEL_OWNER in container.labels
        app = container.labels.get(LABEL_APP, "")
        name = container.labels.get(LABEL_ONEOFF, "")
        if attached and _owner_alive(container) and app in known:
            continue  # its session removes it, and enforces run.timeout itself
        if state == "running" and app in known and not attached:
            if _age(container) <= settings.run_timeout:
                continue
            dynolog.record(layout, app, name, f"Stopping process: run.timeout of "
                                              f"{settings.run_timeout:g} s reached")
            with contextlib.suppress(Exception):
                container.stop(timeout=int(settings.launch_stop_grace))
        elif state == "created" and not attached and _age(container) < 60:
            continue  # being started right now
        reap_one(layout, container)
        reaped.append(f"{app}/{name}")
    if reaped:
        log.get().info("oneoffs_reaped", dynos=reaped)
    return reaped


class OneOffReaper:
    """A server thread: ``reap`` every few seconds (ended detached dynos, timeouts)."""

    def __init__(self, layout: Layout, settings: Settings, *, docker: Any,
                 interval: float = REAP_INTERVAL) -> None:
        self.layout, self.settings, self.docker = layout, settings, docker
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipway-oneoff-reaper",
                                        daemon=True)

    def start(self) -> OneOffReaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                reap(self.layout, self.settings, docker=self.docker)
            except Exception as exc:  # noqa: BLE001 - try again next round
                log.get().warning("oneoff_reap_failed", error=str(exc))


def wait_gone(docker: Any, layout: Layout, app: str, name: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(c.labels.get(LABEL_ONEOFF) == name
                   for c in oneoff_containers(docker, layout, app)):
            return True
        time.sleep(0.2)
    return False
