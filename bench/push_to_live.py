"""Benchmark: ``git push platform master`` to the first HTTP 200 of the new release (issue #7.1).

examples/python-plain, a warm-up push, then 5 pushes of a new commit each; median wall time from
the start of ``git push`` to the first 200 through the router whose body names the new release,
split into stages from structlog events and the time-stamped ``remote:`` lines:

  receive  push starts -> pack indexed and checked        (push.checked)
  build    -> buildpack compile done                      ("Discovering process types")
  compress -> slug written and archived                   (build.succeeded)
  release  -> ref moved, release record, slug image       (slug_image_built)
  boot     -> web dyno accepts connections, route written  (release_launched)
  switch   -> first 200 of the new release via the router

Floor, same run: ``docker run`` of the stack image with the app files mounted until it answers
HTTP. Target: push-to-live minus the floor under 1.5 s.
Usage: ``.venv/bin/python bench/push_to_live.py [--pushes N]``
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    STACK_IMAGE,
    Bench,
    PushResult,
    docker_client,
    ensure_stack_image,
    example_tree,
    http_get,
    median,
    new_commit,
    platform,
    push,
    table,
    target,
)

from release.store import ReleaseStore

STAGES = ("receive", "build", "compress", "release", "boot", "switch")
OVERHEAD_TARGET = 1.5


def floor_once(app_dir: Path, client: Any) -> float:
    """Seconds from ``docker run`` to the first HTTP 200 of the same app on the stack image."""
    started = time.time()
    container = client.containers.run(
        STACK_IMAGE, command=["python3", "app.py"], working_dir="/app", user="1000",
        environment={"PORT": "5000"}, volumes={str(app_dir): {"bind": "/app", "mode": "ro"}},
        ports={"5000/tcp": ("127.0.0.1", None)}, init=True, detach=True,
        labels={"shipway.bench": "floor"},
    )
    try:
        port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if port is None:
                container.reload()
                bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get("5000/tcp")
                if bindings:
                    port = int(bindings[0]["HostPort"])
            if port is not None and http_get(port, timeout=1.0)[0] == 200:
                return time.time() - started
            time.sleep(0.01)
        raise TimeoutError("the floor container never answered")
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def measure_floor(app_dir: Path, rounds: int) -> list[float]:
    client = docker_client()
    try:
        floor_once(app_dir, client)  # warm-up: page cache, engine
        return [floor_once(app_dir, client) for _ in range(rounds)]
    finally:
        client.close()


class Poller:
    """Polls the router from the moment the push starts, for a body naming the new release."""

    def __init__(self, bench: Bench, app: str, release: str) -> None:
        self.needle = f"(release {release})"
        self.bench, self.app = bench, app
        self.seen: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            status, body = self.bench.get(self.app, timeout=2.0)
            if status == 200 and self.needle in body:
                self.seen = time.time()
                return
            time.sleep(0.005)

    def wait(self, timeout: float = 60.0) -> float:
        self._thread.join(timeout)
        if self.seen is None:
            raise TimeoutError(f"never saw {self.needle}")
        return self.seen

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def stage_marks(bench: Bench, result: PushResult, live: float) -> dict[str, float]:
    """Seconds per stage of one push (a stage with no mark is merged into the next one)."""
    after = result.started
    ev = bench.events

    def event(name: str) -> float | None:
        found = ev.find(name, after=after)
        return float(found["t"]) if found else None

    ends = {
        "receive": event("push.checked"),
        "build": result.line_time("Discovering process types"),
        "compress": event("build.succeeded"),
        "release": event("slug_image_built"),
        "boot": event("release_launched"),
        "switch": live,
    }
    marks: dict[str, float] = {}
    last = result.started
    for stage in STAGES:
        end = ends[stage]
        if end is None:
            marks[stage] = 0.0
            continue
        marks[stage] = max(0.0, end - last)
        last = max(last, end)
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=5)
    args = parser.parse_args()
    ensure_stack_image()
    with tempfile.TemporaryDirectory(prefix="shipway-bench-live-") as tmp:
        work = example_tree(Path(tmp), "python-plain")
        floors = measure_floor(work, args.pushes)
        with platform() as bench:
            app = bench.create_app("live")
            store = ReleaseStore(bench.layout)
            warm = push(work, bench.remote(app))
            if warm.returncode != 0:
                print(warm.stderr)
                return 1
            totals: list[float] = []
            per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
            for i in range(args.pushes):
                new_commit(work, f"push {i}")
                version = f"v{store.next_version(app)}"
                with Poller(bench, app, version) as poller:
                    result = push(work, bench.remote(app))
                    if result.returncode != 0:
                        print(result.stderr)
                        return 1
                    live = poller.wait()
                totals.append(live - result.started)
                for stage, seconds in stage_marks(bench, result, live).items():
                    per_stage[stage].append(seconds)
    floor = median(floors)
    total = median(totals)
    overhead = total - floor
    print("### push to live (examples/python-plain)\n")
    print(table(["measure", "median s", "min s", "max s"],
                [["git push -> first 200 (Shipway)", total, min(totals), max(totals)],
                 *[[f"  stage: {s}", median(per_stage[s]), min(per_stage[s]),
                    max(per_stage[s])] for s in STAGES],
                 ["docker run -> first 200 (floor)", floor, min(floors), max(floors)]]))
    print()
    print(f"ratio push-to-live / floor: {total / floor:.2f}x; "
          f"platform overhead: {overhead:.3f} s over {args.pushes} pushes")
    print(target(f"overhead {overhead:.2f} s < {OVERHEAD_TARGET} s", overhead < OVERHEAD_TARGET))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
