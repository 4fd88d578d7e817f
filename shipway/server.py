"""Server wiring: the git endpoint (and API) in cheroot's threaded WSGI server.

cheroot writes each chunk to the socket as the app produces it, which is what live sideband
output needs; its worker pool serves many pushes at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from cheroot import wsgi

from hooks.endpoint import GitEndpoint, WSGIApp
from hooks.pipeline import AnnounceStage, Stage
from hooks.quarantine import clean_stale_quarantines
from shipway.accounts import Accounts
from shipway.layout import Layout
from shipway.log import configure
from shipway.log import get as get_log
from shipway.settings import Settings

THREADS = 32


@dataclass
class RunningServer:
    """A started server; ``port`` is the bound port (useful with port 0)."""

    server: wsgi.Server
    thread: threading.Thread
    host: str
    port: int
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        for callback in self.on_stop:
            callback()
        self.server.stop()
        self.thread.join(timeout=10)


def build_app(layout: Layout, settings: Settings, stage: Stage | None = None,
              api: WSGIApp | None = None) -> GitEndpoint:
    return GitEndpoint(layout, settings, stage or AnnounceStage(), api=api)


def start(layout: Layout, settings: Settings, *, stage: Stage | None = None,
          api: WSGIApp | None = None) -> RunningServer:
    """Start the WSGI server in a thread and return once it listens."""
    layout.ensure()
    for app in Accounts(layout).apps():
        clean_stale_quarantines(layout.repo_path(app.name) / "objects")
    endpoint = build_app(layout, settings, stage, api)
    server = wsgi.Server((settings.host, settings.port), endpoint, numthreads=THREADS,
                         request_queue_size=64, timeout=300, shutdown_timeout=5)
    server.prepare()
    bound = server.bind_addr
    port = bound[1] if isinstance(bound, tuple) else settings.port
    thread = threading.Thread(target=server.serve, name="shipway-http", daemon=True)
    thread.start()
    get_log().info("server.started", host=settings.host, port=port, home=str(layout.home))
    return RunningServer(server=server, thread=thread, host=settings.host, port=port)


def serve(layout: Layout, settings: Settings) -> None:
    """``shipway serve``: run until SIGINT/SIGTERM."""
    configure()
    running = start(layout, settings)
    print(f"Shipway is serving {layout.home} at {running.url}", flush=True)
    print(f"  token:  shipway --home {layout.home} tokens:create you@example.com --admin",
          flush=True)
    print(f"  app:    shipway --home {layout.home} apps:create myapp --owner you@example.com",
          flush=True)
    print(f"  push:   git remote add platform {running.url}/myapp.git && "
          "git push platform master", flush=True)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopping.wait()
    running.stop()


__all__ = ["start", "serve", "RunningServer", "Any"]
