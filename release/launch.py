"""Launching a release: slug image, release phase, dynos, boot check, traffic switch.

Every Docker call that starts, inspects or stops a dyno goes through this module (one door).
A slug is unpacked once, into the image ``shipway/slug:<sha256[:12]>``; every dyno of every
release that uses that slug starts from the image, so scaling, restarts, config changes and
rollbacks unpack nothing.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.slug import Slug, SlugArchive, SlugCorrupt, check_slug
from hooks.pipeline import Output
from release import dynolog
from release.formation import RELEASE_PHASE, read_formation
from release.records import Release
from release.routes import Route, write_route
from release.store import ReleaseStore
from shipway import log
from shipway.accounts import Accounts
from shipway.errors import LaunchFailed, ShipwayError
from shipway.files import is_disk_full
from shipway.layout import Layout
from shipway.settings import Settings

LABEL_APP = "shipway.app"
LABEL_RELEASE = "shipway.release"
LABEL_PROCESS = "shipway.process"
LABEL_DYNO = "shipway.dyno"
LABEL_HOME = "shipway.home"
LABEL_SLUG = "shipway.slug"
LABEL_STACK = "shipway.stack"
LABEL_LOADER = "shipway.slug-loader"
SLUG_REPOSITORY = "shipway/slug"
SLUG_VOLUME_PREFIX = "shipway-slug-"
SLUG_MARKER = ".shipway-slug"
CONTAINER_PORT = 5000
APP_UID = "1000"
LOG_LINES = 20
DRAIN_SECONDS = 1.0
# the command arrives as $0, never formatted into the script: no quoting bugs, no injection,
# and a sourced .profile.d script cannot reassign $0 the way it could clobber a variable
LAUNCH_SCRIPT = (
    'for __shipway_f in /app/.profile.d/*.sh; do '
    'if [ -r "$__shipway_f" ]; then . "$__shipway_f"; fi; done; '
    'exec bash -c "$0"'
)
ENTRYPOINT = ["bash", "-c", LAUNCH_SCRIPT]
ALIVE = ("running", "restarting")


class BootFailed(LaunchFailed):
    """New dynos did not come up; ``lines`` are the last log lines of the dyno that failed."""

    def __init__(self, message: str, lines: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.lines = lines


@dataclass(frozen=True, slots=True)
class Dyno:
    """One process container as Docker reports it (its labels are written by ``start_dyno``)."""

    id: str
    app: str
    release: int
    process_type: str
    index: int
    state: str
    started_at: str
    host_port: int | None
    command: str = ""  # shown by ``ps`` for one-off dynos

    @property
    def name(self) -> str:
        return f"{self.process_type}.{self.index}"


class TeeOutput:
    """Shows each line to the user and appends it to the release's log file."""

    def __init__(self, out: Output, path: Path | None) -> None:
        self.out = out
        self.path = path

    def _keep(self, text: str) -> None:
        if self.path is None:
            return
        # the file is a copy: a full disk loses it, never the line the user reads
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(text + "\n")

    def line(self, text: str) -> None:
        self.out.line(text)
        self._keep(text)

    def error(self, text: str) -> None:
        self.out.error(text)
        self._keep(f" !     {text}")


# dynos as Docker sees them -------------------------------------------------------------------
def app_containers(docker: Any, app: str | None = None, *,
                   layout: Layout | None = None) -> list[Any]:
    """Dynos (of one app, or all), of the data home ``layout`` when given.

    Build containers carry shipway.app too, never shipway.dyno; another data home on the same
    engine (a second install, a test) has its own shipway.home and is never touched.
    """
    labels = [LABEL_APP if app is None else f"{LABEL_APP}={app}", LABEL_DYNO]
    if layout is not None:
        labels.append(f"{LABEL_HOME}={layout.home}")
    return list_containers(docker, filters={"label": labels})


def list_containers(docker: Any, *, filters: dict[str, Any]) -> list[Any]:
    """``containers.list(all=True)`` that survives a container removed while it is listed
    (docker-py inspects each one it lists; a dyno stopping in the background can vanish)."""
    import docker as docker_sdk

    for _ in range(9):
        try:
            return list(docker.containers.list(all=True, filters=filters))
        except docker_sdk.errors.NotFound:
            time.sleep(0.05)
    return list(docker.containers.list(all=True, filters=filters))


def host_port(container: Any) -> int | None:
    ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = ports.get(f"{CONTAINER_PORT}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def dyno_of(container: Any) -> Dyno:
    labels = container.labels
    process_type, _, index = labels.get(LABEL_DYNO, "").rpartition(".")
    state = container.attrs.get("State") or {}
    return Dyno(
        id=container.id,
        app=labels.get(LABEL_APP, ""),
        release=int(labels.get(LABEL_RELEASE, "0") or 0),
        process_type=labels.get(LABEL_PROCESS, process_type),
        index=int(index) if index.isdigit() else 0,
        state=str(state.get("Status", container.status)),
        started_at=str(state.get("StartedAt", "")),
        host_port=host_port(container),
    )


def backend_of(container: Any) -> str | None:
    port = host_port(container)
    return f"127.0.0.1:{port}" if port else None


def last_log_lines(container: Any, dyno: str, count: int = LOG_LINES) -> tuple[str, ...]:
    try:
        raw = container.logs(stdout=True, stderr=True, tail=count)
    except Exception:  # noqa: BLE001 - the container may be gone already
        return ()
    text = raw.decode("utf-8", errors="replace")
    return tuple(f"app[{dyno}]: {line}" for line in text.splitlines()[-count:])


# the slug volume ------------------------------------------------------------------------------
def slug_volume_name(slug_id: str) -> str:
    return f"{SLUG_VOLUME_PREFIX}{slug_id[:12]}"


_COMPLETE_VOLUMES: set[str] = set()


def _volume_complete(docker: Any, name: str, stack: str, slug_id: str) -> bool:
    """True when ``name`` holds the whole slug (its marker is written after the unpack)."""
    import docker as docker_sdk

    if name in _COMPLETE_VOLUMES:
        try:
            docker.volumes.get(name)
            return True
        except docker_sdk.errors.NotFound:
            _COMPLETE_VOLUMES.discard(name)
            return False

    try:
        volume = docker.volumes.get(name)
    except docker_sdk.errors.NotFound:
        return False
    if (volume.attrs.get("Labels") or {}).get(LABEL_SLUG) != slug_id:
        return False
    probe = docker.containers.create(stack, command=["true"],
                                     volumes={name: {"bind": "/app", "mode": "ro"}},
                                     labels={LABEL_LOADER: slug_id})
    try:
        stream, _ = probe.get_archive(f"/app/{SLUG_MARKER}")
        data = b"".join(stream)
    except docker_sdk.errors.NotFound:
        return False
    finally:
        with contextlib.suppress(Exception):
            probe.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member is not None and member.isfile() else None
        complete = handle is not None and handle.read().decode().strip() == slug_id
    if complete:
        _COMPLETE_VOLUMES.add(name)
    return complete


def slug_image(layout: Layout, settings: Settings, slug: Slug, *, docker: Any, out: Output) -> str:
    """The stack image dynos of ``slug`` run on; the slug itself is unpacked once into the
    read-only volume ``shipway-slug-<sha12>`` that ``start_dyno`` mounts at /app.

    A volume costs ~0.1 s to fill where committing an image layer cost ~1.7 s here.
    """
    from builder.stack import launch_stack

    app_stack = ""
    with contextlib.suppress(ShipwayError):
        app_stack = Accounts(layout).app(slug.app).stack
    stack = launch_stack(settings, slug.stack, docker=docker, out=out, app_stack=app_stack)
    name = slug_volume_name(slug.id)
    if _volume_complete(docker, name, stack, slug.id):
        return stack
    archive = SlugArchive(layout)
    archive.verify(slug.id)  # raises SlugCorrupt / NotFound: never unpack bytes we cannot vouch for
    # raises SlugRejected: a slug is data, whatever wrote it; checked before any volume exists
    check_slug(archive.tarball(slug.id), max_unpacked=settings.slug_max_unpacked_size)
    with contextlib.suppress(Exception):
        docker.volumes.get(name).remove(force=True)  # a half-filled one from a crash
    docker.volumes.create(name, labels={LABEL_SLUG: slug.id, LABEL_HOME: str(layout.home)})
    loader = docker.containers.create(
        stack, command=["true"], user="root", volumes={name: {"bind": "/app", "mode": "rw"}},
        labels={LABEL_LOADER: slug.id, LABEL_HOME: str(layout.home)},
    )
    try:
        loader.put_archive("/", _app_dir_tar())
        with archive.tarball(slug.id).open("rb") as fh:
            # Docker's archive upload takes the gzip stream as is: nothing is decompressed here
            # slugs hold app/... entries, as Heroku's do: they unpack at the root
            if not loader.put_archive("/", fh):
                raise SlugCorrupt(f"Docker refused to unpack slug {slug.short_id}.")
        loader.put_archive("/app", _marker_tar(slug.id))
    except BaseException:
        with contextlib.suppress(Exception):
            loader.remove(force=True)
        with contextlib.suppress(Exception):
            docker.volumes.get(name).remove(force=True)  # never a half-filled volume
        raise
    finally:
        with contextlib.suppress(Exception):
            loader.remove(force=True)
    _COMPLETE_VOLUMES.add(name)
    log.get(app=slug.app, slug=slug.short_id).info("slug_image_built", volume=name)
    return stack


def _marker_tar(slug_id: str) -> bytes:
    buffer = io.BytesIO()
    data = (slug_id + "\n").encode()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(SLUG_MARKER)
        info.size, info.mode = len(data), 0o444
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _app_dir_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("app")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.uid = info.gid = int(APP_UID)
        tar.addfile(info)
    return buffer.getvalue()


# starting and stopping dynos -----------------------------------------------------------------
def environment(release: Release, dyno: str, *, web: bool) -> dict[str, str]:
    env = dict(release.config)
    env.update(
        {
            "DYNO": dyno,
            "SHIPWAY_APP": release.app,
            "SHIPWAY_RELEASE": release.name,
            "HOME": "/app",
        }
    )
    env["PORT"] = str(CONTAINER_PORT)
    return env


def _container_name(release: Release, dyno: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", dyno)
    return f"shipway-{release.app}-{release.name}-{safe}-{secrets.token_hex(3)}"


def addon_volumes(layout: Layout, app: str) -> dict[str, dict[str, str]]:
    """Host folders attached add-ons need inside dynos (e.g. a database's socket folder)."""
    from shipway.addons.store import mounts_for

    return {host: {"bind": inside, "mode": "rw"} for host, inside in mounts_for(layout, app).items()}


def addon_network(layout: Layout, app: str) -> str | None:
    """The app's own network when an add-on needs one (its Redis listens there), else None.

    Not one per app for every app: Docker's default address pools hold about 30 bridge
    networks per engine, so per-app networks need an operator's pool first (README).
    """
    from shipway.addons.store import network_for

    return network_for(layout, app)


def start_dyno(
    docker: Any, layout: Layout, settings: Settings, image: str, release: Release, process_type: str,
    index: int, command: str,
) -> Any:
    """Start one dyno; web dynos publish $PORT on 127.0.0.1 with a random host port."""
    container = docker.containers.run(**dyno_options(layout, settings, image, release,
                                                     process_type, index, command))
    dynolog.starting(container, command)
    return container


def dyno_options(
    layout: Layout, settings: Settings, image: str, release: Release, process_type: str,
    index: int, command: str,
) -> dict[str, Any]:
    """``containers.run`` keywords of one dyno (release/oneoff.py starts one-offs from them)."""
    dyno = f"{process_type}.{index}"
    web = process_type == "web"
    return dict(
        image=image,
        command=[command],
        entrypoint=ENTRYPOINT,
        environment=environment(release, dyno, web=web),
        user=APP_UID,
        working_dir="/app",
        labels={
            LABEL_APP: release.app,
            LABEL_RELEASE: str(release.version),
            LABEL_PROCESS: process_type,
            LABEL_DYNO: dyno,
            LABEL_HOME: str(layout.home),
        },
        name=_container_name(release, dyno),
        ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", None)} if web else {},
        volumes={slug_volume_name(release.slug): {"bind": "/app", "mode": "ro"},
                 **addon_volumes(layout, release.app)},
        network=addon_network(layout, release.app),
        # confined: no capability, no privilege gained through setuid, a read-only root
        # (the /app and add-on mounts are volumes: the root's flag does not reach them)
        cap_drop=["ALL"], security_opt=["no-new-privileges"], privileged=False,
        read_only=True, tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
        mem_limit=settings.launch_memory, memswap_limit=settings.launch_memory,
        nano_cpus=int(settings.launch_cpus * 1e9),
        pids_limit=settings.launch_pids,
        init=True,  # signals reach the app and zombies are reaped
        detach=True,
    )


def keep_alive(containers: Iterable[Any]) -> None:
    """Dynos that booted get a restart policy (set only now so a crash on boot stays visible)."""
    containers = list(containers)
    for container in containers:
        with contextlib.suppress(Exception):
            container.update(restart_policy={"Name": "unless-stopped"})
    dynolog.up(containers)


def remove_now(containers: Iterable[Any]) -> None:
    for container in containers:
        dynolog.removing(container)
        with contextlib.suppress(Exception):
            container.remove(force=True)
        dynolog.removed(container)


def stop_later(containers: list[Any], settings: Settings) -> threading.Thread | None:
    """Stop dynos in the background: SIGTERM, stop_grace, SIGKILL, remove."""
    if not containers:
        return None
    dynolog.draining(containers)

    def stop() -> None:
        time.sleep(DRAIN_SECONDS)  # requests already forwarded to these dynos finish first
        for container in containers:
            dynolog.stopping(container)
            status = None
            with contextlib.suppress(Exception):
                container.stop(timeout=math.ceil(settings.launch_stop_grace))
                container.reload()
                status = (container.attrs.get("State") or {}).get("ExitCode")
            with contextlib.suppress(Exception):
                container.remove(force=True)
            dynolog.stopped(container, status)

    # not a daemon: a CLI process waits for its old dynos to be stopped before it exits
    thread = threading.Thread(target=stop, name="shipway-stop-dynos", daemon=False)
    thread.start()
    return thread


def accepts_connections(port: int, timeout: float = 0.5) -> bool:
    """True when something listens behind 127.0.0.1:port.

    Docker's userland proxy accepts on the host port even when nothing listens in the container
    and then closes at once, so a connect alone proves nothing: a listener keeps it open.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            # the proxy's hang-up comes within a few ms; a listener stays quiet until spoken to
            sock.settimeout(0.08)
            try:
                return bool(sock.recv(1))
            except TimeoutError:
                return True
            except OSError:
                return False
    except OSError:
        return False


def wait_for_boot(containers: list[Any], settings: Settings) -> None:
    """Wait until every web dyno accepts connections on $PORT; raises BootFailed."""
    timeout = settings.launch_boot_timeout
    deadline = time.monotonic() + timeout
    waiting = [c for c in containers if c.labels.get(LABEL_PROCESS) == "web"]
    others = [c for c in containers if c.labels.get(LABEL_PROCESS) != "web"]
    while True:
        for container in list(waiting) + others:
            container.reload()
            dyno = container.labels.get(LABEL_DYNO, "")
            state = container.attrs.get("State") or {}
            if state.get("Status") in ("exited", "dead"):
                process = container.labels.get(LABEL_PROCESS, "")
                raise BootFailed(
                    f"{process} exited with status {state.get('ExitCode')}",
                    last_log_lines(container, dyno),
                )
            port = host_port(container)
            if container in waiting and port and accepts_connections(port):
                waiting.remove(container)
        if not waiting:
            return
        if time.monotonic() > deadline:
            container = waiting[0]
            raise BootFailed(
                f"web failed to bind to $PORT within {timeout:g} seconds of launch",
                last_log_lines(container, container.labels.get(LABEL_DYNO, "")),
            )
        time.sleep(0.03)


def settle(containers: list[Any], settings: Settings) -> None:
    """Watch the new web dynos for ``launch.settle`` seconds after the switch; raises
    BootFailed when one exits (a web process that crashes right after binding its port)."""
    deadline = time.monotonic() + settings.launch_settle
    web = [c for c in containers if c.labels.get(LABEL_PROCESS) == "web"]
    while web:
        for container in web:
            container.reload()
            state = container.attrs.get("State") or {}
            if state.get("Status") in ("exited", "dead"):
                raise BootFailed(
                    f"web exited with status {state.get('ExitCode')} within "
                    f"{settings.launch_settle:g} seconds of the switch",
                    last_log_lines(container, container.labels.get(LABEL_DYNO, "")))
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)


def start_formation(
    layout: Layout, settings: Settings, release: Release, slug: Slug, image: str, *, docker: Any,
) -> list[Any]:
    """Start every dyno the formation asks for, for one release (not yet receiving traffic)."""
    counts = read_formation(layout, release.app).for_types(slug.process_types)
    started: list[Any] = []
    try:
        for process_type, quantity in counts.items():
            for index in range(1, quantity + 1):
                started.append(
                    start_dyno(docker, layout, settings, image, release, process_type, index,
                               slug.process_types[process_type])
                )
    except BaseException:
        remove_now(started)
        raise
    return started


def route_to(layout: Layout, release: Release, containers: Iterable[Any]) -> Route:
    """Move the app's traffic to these web dynos (returns once the router serves them)."""
    backends, names = [], []
    for container in containers:
        if container.labels.get(LABEL_PROCESS) != "web":
            continue
        container.reload()
        if (container.attrs.get("State") or {}).get("Status") == "running":
            backend = backend_of(container)
            if backend:
                backends.append(backend)
                names.append(container.labels.get(LABEL_DYNO, ""))
    route = Route(release.app, release.version, tuple(backends), tuple(names))
    write_route(layout, route)
    return route


# the release phase ----------------------------------------------------------------------------
def run_release_phase(
    layout: Layout, settings: Settings, release: Release, image: str, command: str, *, docker: Any, out: Output,
) -> None:
    """Run the ``release`` process once with the new env; raises BootFailed on non-zero exit."""
    import docker as docker_sdk

    out.line("-----> Running release command...")
    container = start_dyno(docker, layout, settings, image, release, RELEASE_PHASE, 1, command)
    # a hung release command is killed at build_timeout, which also ends the log stream below
    timed_out = threading.Event()

    def stop_hung() -> None:
        timed_out.set()
        remove_now([container])

    watchdog = threading.Timer(settings.build_timeout, stop_hung)
    watchdog.daemon = True
    watchdog.start()
    try:
        for line in _stream_lines(container.logs(stream=True, follow=True)):
            out.line(f"       {line}")
        result = container.wait(timeout=settings.build_timeout)
        status = int(result.get("StatusCode", 1))
    except docker_sdk.errors.DockerException:
        status = -1
    finally:
        watchdog.cancel()
        remove_now([container])
    if timed_out.is_set():
        raise BootFailed(
            f"release command did not finish within {settings.build_timeout:g} seconds")
    if status != 0:
        raise BootFailed(f"release command failed with status {status}")


def _stream_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", errors="replace")
    if pending:
        yield pending.decode("utf-8", errors="replace")


# launching a release ----------------------------------------------------------------------------
def launch(
    layout: Layout, settings: Settings, release: Release, *, docker: Any, out: Output,
) -> Release:
    """Run a pending release: boot its dynos, move traffic, stop the old ones; finishes it.

    The caller holds the app lock. A release that does not start is recorded ``failed`` and
    reported with ``out.error``; the previous release keeps serving. Nothing is raised for that.
    """
    import docker as docker_sdk

    store = ReleaseStore(layout)
    app = release.app
    previous = store.current(app)
    logger = log.get(app=app, release=release.version)
    new: list[Any] = []
    old: list[Any] = []
    switched = False
    try:
        slug = SlugArchive(layout).get(release.slug)
        image = slug_image(layout, settings, slug, docker=docker, out=out)
        if RELEASE_PHASE in slug.process_types:
            run_release_phase(layout, settings, release, image, slug.process_types[RELEASE_PHASE],
                              docker=docker, out=out)
        new = start_formation(layout, settings, release, slug, image, docker=docker)
        wait_for_boot(new, settings)
        old = [c for c in app_containers(docker, app, layout=layout)
               if c.id not in {n.id for n in new}]
        switched = True
        route_to(layout, release, new)
        settle(new, settings)
    except Exception as exc:  # noqa: BLE001 - whatever stopped it, the release is recorded failed
        if switched:
            with contextlib.suppress(Exception):  # traffic back to the dynos still running
                route_to(layout, previous or release, old)
        remove_now(new)
        if is_disk_full(exc):
            reason = "no space left on the server's disk"
        elif isinstance(exc, ShipwayError):
            reason = exc.message
        elif isinstance(exc, docker_sdk.errors.DockerException):
            reason = f"Docker error: {exc}"
        else:
            logger.exception("launch_crashed")
            reason = f"internal error: {type(exc).__name__}: {exc}"
        failed = store.finish(release, "failed", failure=reason)
        still = (
            f"still running {previous.name}" if previous is not None and previous.slug
            else "no release is running"
        )
        lines = exc.lines if isinstance(exc, BootFailed) else ()
        below = " (last log lines below)" if lines else ""
        out.error(f"{release.name} failed to start: {reason}{below}; {still}")
        for line in lines:
            out.line(line)
        logger.warning("release_failed", reason=reason)
        return failed
    keep_alive(new)
    done = store.finish(release, "succeeded", launched=True)
    stop_later(old, settings)
    logger.info("release_launched", dynos=len(new))
    out.line(f"-----> Launching... done, {release.name}")
    out.line(f"       {app_url(settings, app)} deployed to Shipway")
    return done


def app_url(settings: Settings, app: str) -> str:
    return f"http://{app}.{settings.router_domain}:{settings.router_port}/"


def dynos(docker: Any, layout: Layout, app: str) -> list[Dyno]:
    found = [dyno_of(c) for c in app_containers(docker, app, layout=layout)]
    found = [d for d in found if d.process_type != RELEASE_PHASE]
    return sorted(found, key=lambda d: (d.process_type, d.index, d.release))


def counts_by_type(dynos_: Iterable[Dyno]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for dyno in dynos_:
        counts[dyno.process_type] = counts.get(dyno.process_type, 0) + 1
    return counts
