"""The one door for build containers: create, fill via the archive API, run, stream, remove.

A build container is unprivileged (uid 1000, every capability dropped, no new privileges, no
Docker socket), limited in memory, CPU, pids and wall-clock time, and always removed afterwards.
Its output is streamed one line at a time as the buildpack prints it, capped at ``output_limit``.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from shipway.errors import BuildFailed

BUILD_USER = "1000:1000"
SPOOL = 64 << 20
LABEL_HOME = "shipway.home"
# the container kills its own build this long after the limit, should the server be gone
SELF_KILL_MARGIN = 5
# coreutils 9.10's timeout exits 125 at once when it is PID 1 (it cannot make its own process
# group), so bash stays PID 1 (the "; exit" keeps it from exec'ing) and runs it as a child
SELF_KILL = ["/bin/bash", "-c", 'timeout --signal=KILL "$0" "$@"; exit $?']

_RUNNING: set[BuildContainer] = set()
_RUNNING_LOCK = threading.Lock()


def stop_builds(home: str) -> int:
    """Kill the builds this process runs for data home ``home`` (the server is stopping)."""
    with _RUNNING_LOCK:
        boxes = [b for b in _RUNNING if b.home == home]
    for box in boxes:
        box.stopped.set()
        with contextlib.suppress(Exception):
            box.container.kill()
    return len(boxes)


def remove_orphan_builds(docker: Any, home: str) -> int:
    """Remove build containers of ``home`` that no build of this process owns (a crash's)."""
    # under the lock a build is either not yet created or already ours: a push that arrives
    # while the server starts never has its new container taken for a crash's
    with _RUNNING_LOCK:
        found = docker.containers.list(
            all=True, sparse=True,
            filters={"label": ["shipway.role=build", f"{LABEL_HOME}={home}"]})
        ours = {b.container.id for b in _RUNNING}
    orphans = [c for c in found if c.id not in ours]
    for container in orphans:
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
    return len(orphans)


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one build container (from Settings.build_*)."""

    memory: str = "2g"
    cpus: float = 2.0
    pids: int = 512
    timeout: float = 900.0
    output_limit: int = 10_000_000


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_code: int
    timed_out: bool
    truncated: bool
    stopped: bool = False  # killed because the server is stopping


class BuildContainer:
    """A created (not yet started) build container; use as a context manager so it is removed.

    It is labelled with its data home, so the next start removes it should the server crash,
    and its command runs under ``timeout``, so it stops at its limit even with no server.
    """

    def __init__(self, docker: Any, image: str, command: list[str], *, app: str,
                 limits: Limits, environment: dict[str, str], home: str = "",
                 volumes: dict[str, dict[str, str]] | None = None) -> None:
        import docker as docker_sdk

        self.docker = docker
        self.limits = limits
        self.home = home
        self.stopped = threading.Event()
        deadline = f"{int(limits.timeout) + SELF_KILL_MARGIN}s"
        # created and registered under one lock: the orphan sweep never sees it half-way
        with _RUNNING_LOCK:
            try:
                self.container = docker.containers.create(
                    image, [*SELF_KILL, deadline, *command], user=BUILD_USER,
                    working_dir="/app", environment=environment,
                    labels={"shipway.app": app, "shipway.role": "build", LABEL_HOME: home},
                    cap_drop=["ALL"], security_opt=["no-new-privileges"], privileged=False,
                    mem_limit=limits.memory, memswap_limit=limits.memory,
                    nano_cpus=int(limits.cpus * 1e9), pids_limit=limits.pids,
                    network_mode="bridge", detach=True, tty=False, stdin_open=False,
                    volumes=volumes or {},
                )
                _RUNNING.add(self)
            except docker_sdk.errors.ImageNotFound:
                raise BuildFailed(f"The stack image {image} does not exist on this server."
                                  ) from None

    def __enter__(self) -> BuildContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        import docker as docker_sdk

        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        try:
            self.container.remove(force=True, v=True)
        except docker_sdk.errors.NotFound:
            pass
        except docker_sdk.errors.APIError as exc:
            # 409: a removal is already under way, which is all we asked for
            if exc.status_code != 409:
                raise

    def put(self, path: str, data: IO[bytes] | bytes) -> None:
        """Unpack a tar inside the container at ``path`` (Docker does it, never the host)."""
        if not self.container.put_archive(path, data):
            raise BuildFailed(f"Could not copy files into the build container at {path}.")

    def get(self, path: str, *, max_bytes: int | None = None,
            too_large: Callable[[int], Exception] | None = None) -> IO[bytes]:
        """A tar of ``path`` inside the container, spooled to a temp file (never unpacked).

        Over ``max_bytes`` the transfer stops and ``too_large(bytes_so_far)`` is raised.
        """
        stream, _stat = self.container.get_archive(path, chunk_size=1 << 20)
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115
        seen = 0
        for chunk in stream:
            seen += len(chunk)
            if max_bytes is not None and seen > max_bytes:
                spool.close()
                with contextlib.suppress(Exception):
                    stream.close()
                raise (too_large or (lambda n: BuildFailed(f"{path} is over {max_bytes} bytes.")))(seen)
            spool.write(chunk)
        spool.seek(0)
        return spool

    def run(self, on_line: Callable[[str], None]) -> RunResult:
        """Start, stream each output line to ``on_line``, wait; kills it at the time limit."""
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(Exception):
                self.container.kill()

        timer = threading.Timer(self.limits.timeout, kill)
        timer.daemon = True
        # attached before start: the live stream in order (following the json log file can
        # deliver a fast writer's tail before its middle)
        stream = self.container.attach(stdout=True, stderr=True, stream=True, logs=False)
        self.container.start()
        timer.start()
        truncated = False
        try:
            seen = 0
            for line in split_lines(stream):
                seen += len(line) + 1
                if seen > self.limits.output_limit:
                    if not truncated:
                        truncated = True
                        on_line(f" !     Build output is over {self.limits.output_limit} bytes;"
                                " the rest is not shown (the build goes on)")
                    continue
                on_line(line)
            status = self.container.wait()
        finally:
            timer.cancel()
        return RunResult(int(status.get("StatusCode", -1)), timed_out.is_set(), truncated,
                         self.stopped.is_set())


def split_lines(chunks: Iterable[bytes], max_line: int = 64 << 10) -> Iterator[str]:
    """Decode a byte stream into lines as they complete (overlong lines are cut)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                if len(pending) > max_line:
                    yield _text(pending[:max_line])
                    pending = pending[max_line:]
                    continue
                break
            yield _text(pending[:cut])
            pending = pending[cut + 1:]
    if pending:
        yield _text(pending)


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", "replace")
