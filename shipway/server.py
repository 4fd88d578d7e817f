"""Server wiring: the git endpoint (and API) in cheroot's threaded WSGI server.

cheroot writes each chunk to the socket as the app produces it, which is what live sideband
output needs; its worker pool serves many pushes at once. ``shipway.frontdoor`` keeps slow and
idle clients out of that pool until their request head has arrived.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from cheroot import wsgi

from builder.container import stop_builds
from hooks.endpoint import GitEndpoint, WSGIApp
from hooks.pipeline import AnnounceStage, Stage
from hooks.quarantine import clean_stale_quarantines
from shipway.accounts import Accounts
from shipway.frontdoor import FrontDoor
from shipway.layout import Layout
from shipway.log import configure
from shipway.log import get as get_log
from shipway.recovery import recover
from shipway.rendezvous import Rendezvous
from shipway.settings import Settings

THREADS = 32
BACKLOG = 1024
SIGNAL_POLL = 0.2
# one read or write that makes no progress this long ends the request (heads: http.header_timeout)
SOCKET_TIMEOUT = 60


@dataclass
class RunningServer:
    """A started server; ``port`` is the bound port (useful with port 0)."""

    server: wsgi.Server
    thread: threading.Thread
    host: str
    port: int
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    router: Any = None

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
    recover(layout, docker=None)
    endpoint = build_app(layout, settings, stage, api)
    server = FrontDoor((settings.host, settings.port), endpoint,
                       head_timeout=settings.http_header_timeout, numthreads=THREADS,
                       request_queue_size=BACKLOG, timeout=SOCKET_TIMEOUT, shutdown_timeout=5)
    server.prepare()
    bound = server.bind_addr
    port = bound[1] if isinstance(bound, tuple) else settings.port
    thread = threading.Thread(target=server.serve, name="shipway-http", daemon=True)
    thread.start()
    get_log().info("server.started", host=settings.host, port=port, home=str(layout.home))
    running = RunningServer(server=server, thread=thread, host=settings.host, port=port)
    # builds run in this process: none may outlive it
    running.on_stop.append(lambda: _stop_builds(layout))
    return running


def _stop_builds(layout: Layout) -> None:
    stopped = stop_builds(str(layout.home))
    if stopped:
        get_log().info("server.builds_stopped", builds=stopped)


def start_platform(layout: Layout, settings: Settings, *,
                   docker_factory: Callable[[], Any] | None = None) -> RunningServer:
    """Everything ``shipway serve`` runs: reconcile, router, supervisor, git endpoint + API."""
    import docker as docker_sdk

    from release.oneoff import OneOffReaper, reap
    from release.reconcile import Supervisor, reconcile
    from shipway.addons.pgbackups import BackupScheduler
    from shipway.addons.supervise import AddonSupervisor, reconcile_addons
    from shipway.deploy import DeployStage
    from shipway.router import Router

    factory = docker_factory or docker_sdk.from_env
    layout.ensure()
    client = factory()
    recover(layout, docker=client)
    reconcile_addons(layout, settings, docker=client)  # a worker's Redis runs before it boots
    reconcile(layout, settings, docker=client)
    reap(layout, settings, docker=client)  # one-offs that ended, or lost their terminal
    router = Router(layout, settings).start()
    supervisor = Supervisor(layout, settings, docker=client).start()
    addon_supervisor = AddonSupervisor(layout, settings, docker=client).start()
    backups = BackupScheduler(layout).start()
    reaper = OneOffReaper(layout, settings, docker=client).start()
    rendezvous = Rendezvous(settings.host, settings.run_rendezvous_port).start()
    running = start(layout, settings, stage=DeployStage(layout, settings, docker_factory=factory),
                    api=_api(layout, settings, factory, rendezvous))
    running.router = router
    running.on_stop.extend([router.stop, supervisor.stop, addon_supervisor.stop, backups.stop,
                            reaper.stop, rendezvous.stop, client.close])
    return running


def _api(layout: Layout, settings: Settings, factory: Callable[[], Any],
         rendezvous: Rendezvous | None = None) -> WSGIApp | None:
    try:
        from shipway.api import make_api
    except ImportError:
        return None
    api: WSGIApp = make_api(layout, settings, docker_factory=factory, rendezvous=rendezvous)
    return api


class _PrintOutput:
    def line(self, text: str) -> None:
        print(text, flush=True)

    def error(self, text: str) -> None:
        print(f" !     {text}", flush=True)


def prepare_stack(settings: Settings) -> None:
    """Build the default stack image now, so the first push does not wait for it."""
    import docker as docker_sdk

    from builder.stack import ensure_stack

    client = docker_sdk.from_env()
    try:
        ensure_stack(settings, docker=client, out=_PrintOutput(), variant="build")
    except Exception as exc:  # noqa: BLE001 - the first push will retry and show the error
        print(f" !     Could not build the stack image yet: {exc}", flush=True)
    finally:
        client.close()


def serve(layout: Layout, settings: Settings) -> None:
    """``shipway serve``: run until SIGINT/SIGTERM."""
    configure()
    threading.Thread(target=prepare_stack, args=(settings,), name="stack", daemon=True).start()
    running = start_platform(layout, settings)
    print(f"Shipway is serving {layout.home} at {running.url}", flush=True)
    if running.router is not None:
        print(f"  apps:   http://APP.{settings.router_domain}:{running.router.port}/  "
              f"(nginx; HTTPS on :{running.router.https_port} for apps with certs)", flush=True)
    print(f"  token:  shipway --home {layout.home} tokens:create you@example.com --admin",
          flush=True)
    print(f"  login:  shipway login --server {running.url} --email you@example.com "
          "--token TOKEN", flush=True)
    print("  app:    shipway apps:create myapp   (inside your app's git repository)", flush=True)
    print(f"  push:   git remote add platform {running.url}/myapp.git   (apps:create adds it)",
          flush=True)
    print("          git push platform master", flush=True)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # a process-directed signal may land on any thread; Python runs its handler only once the
    # main thread wakes, so the main thread must not sleep in one endless wait
    while not stopping.wait(timeout=SIGNAL_POLL):
        pass
    running.stop()


__all__ = ["start", "start_platform", "serve", "RunningServer"]
