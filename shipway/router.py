"""The app router: Shipway's own nginx master, ``http://NAME.DOMAIN:PORT/`` -> web dynos.

``Router(layout, settings).start()`` writes ``run/nginx/nginx.conf`` and one file per app (see
``shipway/nginx.py``), starts ``nginx -p run/nginx -c nginx.conf`` as a child process, and
restarts it if it dies; ``.stop()`` shuts it down gracefully. Nothing outside the data home is
read or written, so a second Shipway with another data home runs its own router, and no root
is needed for ports above 1024. A master left running by a Shipway that was killed is stopped
at the next start.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from shipway import log, nginx
from shipway.errors import ShipwayError
from shipway.files import write_atomically
from shipway.layout import Layout
from shipway.settings import Settings

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
RESTART_PAUSE = 1.0


class RouterFailed(ShipwayError):
    """nginx did not start (missing binary, port taken, configuration refused)."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)
    if found is None:
        raise RouterFailed("nginx is not installed: run scripts/host-setup (Debian's nginx).")
    return found


class Router:
    """``Router(layout, settings).start()`` returns once nginx listens; ``.port``; ``.stop()``."""

    def __init__(self, layout: Layout, settings: Settings, *, workers: str = "auto") -> None:
        self.layout = layout
        self.settings = settings
        self.host = settings.router_host
        self.port = settings.router_port or _free_port(self.host)
        # a router on a free port (tests, a second Shipway) takes a free HTTPS port too
        free_https = not settings.router_https_port or not settings.router_port
        self.https_port = _free_port(self.host) if free_https else settings.router_https_port
        self.workers = workers
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.log = log.get(component="router")

    @property
    def listen(self) -> nginx.Listen:
        pid = self._process.pid if self._process is not None else 0
        return nginx.Listen(self.host, self.port, self.https_port, self.settings.router_domain,
                            self.settings.router_max_body_size, pid)

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> Router:
        binary = nginx_binary()
        self.layout.ensure()
        self._stop_leftover()
        for folder in (nginx.apps_conf_dir(self.layout), nginx.nginx_dir(self.layout) / "temp",
                       self.layout.logs_dir / "router"):
            folder.mkdir(parents=True, exist_ok=True)
        listen = self.listen
        nginx.write_listen(self.layout, listen)  # from now on every route change renders
        self._render_all(listen)
        user = getpass.getuser()
        conf = nginx.render_main(self.layout, listen, workers=self.workers, user=user)
        write_atomically(nginx.main_conf(self.layout), conf)
        self._command = [binary, "-p", str(nginx.nginx_dir(self.layout)), "-c",
                         str(nginx.main_conf(self.layout)), "-e",
                         str(nginx.error_log(self.layout))]
        self._spawn()
        self._watcher = threading.Thread(target=self._supervise, name="shipway-router",
                                         daemon=True)
        self._watcher.start()
        self.log.info("router_started", host=self.host, port=self.port,
                      https_port=self.https_port, pid=self._process.pid if self._process else 0)
        return self

    def _render_all(self, listen: nginx.Listen) -> None:
        """Every app's file from its route, domains and certificate; strays removed."""
        from release.reconcile import app_names  # release/ builds on shipway's base modules
        from release.routes import read_route, route_file

        apps = app_names(self.layout)
        for stale in nginx.apps_conf_dir(self.layout).glob("*.conf"):
            if stale.stem not in apps:
                stale.unlink()
        for app in apps:
            path = route_file(self.layout, app)
            route = read_route(path, app) if path.exists() else None
            backends, dynos = (route.backends, route.dynos) if route else ((), ())
            text = nginx.render_app(self.layout, listen, app, backends, dynos)
            write_atomically(nginx.app_conf(self.layout, app), text)

    def _spawn(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            nginx.pid_file(self.layout).unlink()
        errors_from = _size(nginx.error_log(self.layout))
        process = subprocess.Popen(self._command, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        self._process = process
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RouterFailed(f"The router (nginx) did not start: "
                                   f"{_new_errors(self.layout, errors_from)}")
            if nginx.master_pid(self.layout) == process.pid and nginx.workers(process.pid):
                nginx.write_listen(self.layout, self.listen)
                return
            time.sleep(0.01)
        process.kill()
        raise RouterFailed("The router (nginx) did not start within "
                           f"{START_TIMEOUT:g} seconds.")

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.is_set():
                return
            self.log.error("router_died", status=code, error=nginx._last_error(self.layout))
            time.sleep(RESTART_PAUSE)
            try:
                self._spawn()
            except RouterFailed as exc:
                self.log.error("router_restart_failed", error=exc.message)

    def _stop_leftover(self) -> None:
        """Stop a master this data home started in an earlier life (its Shipway was killed)."""
        pid = nginx.master_pid(self.layout)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Graceful shutdown: requests in flight finish (up to STOP_TIMEOUT), then nginx exits."""
        self._stopping.set()
        process = self._process
        with contextlib.suppress(FileNotFoundError):
            nginx.listen_file(self.layout).unlink()
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=STOP_TIMEOUT)

    def url(self, app: str) -> str:
        return f"http://{app}.{self.settings.router_domain}:{self.port}/"


def _size(path: os.PathLike[str]) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _new_errors(layout: Layout, offset: int) -> str:
    with contextlib.suppress(OSError), nginx.error_log(layout).open("rb") as fh:
        fh.seek(offset)
        lines = fh.read().decode("utf-8", errors="replace").splitlines()
        found = [line.split("] ", 1)[-1] for line in lines if "[emerg]" in line or "[alert]" in line]
        if found:
            return found[-1]
    return "see " + str(nginx.error_log(layout))
