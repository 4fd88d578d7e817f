"""Making running dynos match each app's current release and formation, and keeping them so.

``reconcile`` runs at server start and after every change of dynos; the ``Supervisor`` thread
re-runs it for an app whose dyno died. Docker's restart policy covers crashes, but not a
``docker kill`` (Docker marks that container as stopped by hand and leaves it down).
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime
from typing import Any

from builder.slug import SlugArchive
from release import dynolog
from release.formation import RELEASE_PHASE, read_formation
from release.launch import (
    ALIVE,
    LABEL_APP,
    LABEL_DYNO,
    LABEL_HOME,
    LABEL_LOADER,
    BootFailed,
    app_containers,
    backend_of,
    dyno_of,
    keep_alive,
    list_containers,
    remove_now,
    route_to,
    slug_image,
    start_dyno,
    stop_later,
    wait_for_boot,
)
from release.routes import read_route, remove_route, route_file
from release.store import ReleaseStore
from shipway import log
from shipway.errors import NotFound, ShipwayError
from shipway.layout import Layout
from shipway.settings import Settings

LOADER_MAX_AGE = 3600.0
RECHECK_SECONDS = 2.0


class _Quiet:
    def line(self, text: str) -> None:
        pass

    def error(self, text: str) -> None:
        pass


def app_names(layout: Layout) -> list[str]:
    if not layout.apps_dir.is_dir():
        return []
    return sorted(p.name for p in layout.apps_dir.iterdir() if (p / "app.toml").exists())


def reconcile_app(layout: Layout, settings: Settings, app: str, *, docker: Any) -> bool:
    """Converge one app's dynos on its current release; the caller holds the app lock.

    Returns False while a dyno is still being restarted by Docker (look again soon: its new
    host port goes into the route only once it runs).
    """
    store = ReleaseStore(layout)
    current = store.current(app)
    containers = app_containers(docker, app, layout=layout)
    if current is None or not current.slug or not current.launched:
        remove_route(layout, app)
        stop_later(containers, settings)
        return True
    try:
        slug = SlugArchive(layout).get(current.slug)
    except NotFound:
        log.get(app=app, release=current.version).error("reconcile_slug_missing")
        return True
    counts = read_formation(layout, app).for_types(slug.process_types)
    routed: set[str] = set()
    path = route_file(layout, app)
    if path.exists():
        routed = set(read_route(path, app).backends)
    keep: dict[tuple[str, int], Any] = {}
    drop: list[Any] = []
    # routed dynos first, so a duplicate slot keeps the one that serves traffic
    ordered = sorted(containers, key=lambda c: backend_of(c) not in routed)
    for container in ordered:
        dyno = dyno_of(container)
        slot = (dyno.process_type, dyno.index)
        wanted = (
            dyno.release == current.version
            and dyno.process_type != RELEASE_PHASE
            and 1 <= dyno.index <= counts.get(dyno.process_type, 0)
        )
        if wanted and dyno.state in ALIVE and slot not in keep:
            keep[slot] = container
        else:
            drop.append(container)
    missing = [
        (process_type, index)
        for process_type, quantity in counts.items()
        for index in range(1, quantity + 1)
        if (process_type, index) not in keep
    ]
    started: list[Any] = []
    if missing:
        image = slug_image(layout, settings, slug, docker=docker, out=_Quiet())
        for process_type, index in missing:
            started.append(start_dyno(docker, layout, settings, image, current, process_type, index,
                                      slug.process_types[process_type]))
        try:
            wait_for_boot(started, settings)
        except BootFailed as exc:
            log.get(app=app, release=current.version).error("reconcile_boot_failed",
                                                            reason=exc.message)
            remove_now(started)
            started = []
        keep_alive(started)
    serving = list(keep.values()) + started
    route_to(layout, current, serving)
    stop_later(drop, settings)
    for container in serving:
        with contextlib.suppress(Exception):
            container.reload()
    return all((c.attrs.get("State") or {}).get("Status") == "running" for c in serving)


def reconcile(layout: Layout, settings: Settings, *, docker: Any) -> None:
    """Every app's dynos to its current release and formation; strays removed; routes rewritten."""
    apps = app_names(layout)
    store = ReleaseStore(layout)
    for app in apps:
        try:
            with store.lock(app):
                reconcile_app(layout, settings, app, docker=docker)
        except ShipwayError as exc:
            log.get(app=app).error("reconcile_failed", reason=exc.message)
    known = set(apps)
    strays = [c for c in app_containers(docker, layout=layout) if c.labels.get(LABEL_APP) not in known]
    loaders = list_containers(
        docker, filters={"label": [LABEL_LOADER, f"{LABEL_HOME}={layout.home}"]})
    # a young loader may belong to a launch running right now in another process
    old_loaders = [c for c in loaders if _age_seconds(c) > LOADER_MAX_AGE]
    remove_now(strays + old_loaders)


def _age_seconds(container: Any) -> float:
    created = str(container.attrs.get("Created", ""))[:19]
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return (datetime.now(UTC) - then).total_seconds()


class Supervisor:
    """Watches Docker for dying dynos and reconciles their app (a thread of the server)."""

    def __init__(self, layout: Layout, settings: Settings, *, docker: Any,
                 settle: float = 1.0, sweep_interval: float = 30.0) -> None:
        self.layout = layout
        self.settings = settings
        self.docker = docker
        self.settle = settle
        self.sweep_interval = sweep_interval
        self._stopping = threading.Event()
        self._dirty: set[str] = set()
        self._wake = threading.Condition()
        self._events: Any = None
        self._threads: list[threading.Thread] = []

    def start(self) -> Supervisor:
        for target, name in ((self._watch, "shipway-supervisor-events"),
                             (self._work, "shipway-supervisor")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(Exception):
            if self._events is not None:
                self._events.close()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)

    def _mark(self, app: str) -> None:
        with self._wake:
            self._dirty.add(app)
            self._wake.notify_all()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                self._events = self.docker.events(
                    decode=True, filters={
                        "label": [LABEL_APP, LABEL_DYNO, f"{LABEL_HOME}={self.layout.home}"],
                        "event": "die",
                    }
                )
                for event in self._events:
                    app = ((event.get("Actor") or {}).get("Attributes") or {}).get(LABEL_APP)
                    dynolog.died(self.layout, event)
                    if app:
                        self._mark(app)
            except Exception:  # noqa: BLE001 - the engine went away: retry until stopped
                if not self._stopping.is_set():
                    log.get().warning("supervisor_events_lost")
                    time.sleep(1.0)

    def _work(self) -> None:
        next_sweep = time.monotonic() + self.sweep_interval
        while not self._stopping.is_set():
            with self._wake:
                if not self._dirty:
                    self._wake.wait(timeout=max(0.0, next_sweep - time.monotonic()))
                apps = set(self._dirty)
                self._dirty.clear()
            if self._stopping.is_set():
                return
            if time.monotonic() >= next_sweep:
                apps |= set(app_names(self.layout))
                next_sweep = time.monotonic() + self.sweep_interval
            if apps:
                time.sleep(self.settle)  # let Docker's own restart policy act first
            for app in sorted(apps):
                self._reconcile(app)

    def _reconcile(self, app: str) -> None:
        try:
            if not self.layout.app_file(app).exists():
                return
            with ReleaseStore(self.layout).lock(app):
                settled = reconcile_app(self.layout, self.settings, app, docker=self.docker)
            if not settled and not self._stopping.is_set():
                timer = threading.Timer(RECHECK_SECONDS, self._mark, args=(app,))
                timer.daemon = True
                timer.start()
        except Exception as exc:  # noqa: BLE001 - one app's trouble must not stop the others
            log.get(app=app).error("supervisor_reconcile_failed", error=str(exc))
