"""Benchmark: redeploys that need no build (issue #7.2), each until the app serves the new release.

(a) ``git push`` of a commit with an unchanged tree (the slug is reused),
(b) ``config:set`` (release.config.set_config), (c) ``rollback`` to the previous release.
Median of N rounds each, against the ``docker run`` floor measured in the same run.
Target: each within 1.5x the floor (issue #13: switching through nginx stays fast).
Usage: ``.venv/bin/python bench/redeploy_and_rollback.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    EMAIL,
    Bench,
    docker_client,
    ensure_stack_image,
    example_tree,
    git,
    median,
    platform,
    push,
    table,
    target,
    wait_for_body,
)
from push_to_live import measure_floor

from release.config import set_config
from release.rollback import rollback
from release.store import ReleaseStore

RATIO_TARGET = 1.5


class Quiet:
    def line(self, text: str) -> None:
        pass

    def error(self, text: str) -> None:
        print(f" !     {text}")


def until_live(bench: Bench, app: str, action: Callable[[], None]) -> float:
    """Seconds from the start of ``action`` to the first 200 naming the release it creates."""
    version = f"v{ReleaseStore(bench.layout).next_version(app)}"
    started = time.time()
    action()
    try:
        seen = wait_for_body(bench.settings.router_port, f"{app}.localhost",
                             f"(release {version})", interval=0.005)
    except TimeoutError:
        for release in ReleaseStore(bench.layout).list(app):
            print(release.name, release.status, release.description, release.failure)
        print("serving:", bench.get(app))
        import subprocess
        print(subprocess.run(["docker", "ps", "-a", "--filter", f"label=shipway.app={app}"],
                             capture_output=True, text=True).stdout)
        raise
    return seen - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_stack_image()
    with tempfile.TemporaryDirectory(prefix="shipway-bench-redeploy-") as tmp:
        work = example_tree(Path(tmp), "python-plain")
        floors = measure_floor(work, args.rounds)
        with platform() as bench:
            app = bench.create_app("redeploy")
            first = push(work, bench.remote(app))
            if first.returncode != 0:
                print(first.stderr)
                return 1
            client = docker_client()
            times: dict[str, list[float]] = {"push, unchanged tree": [], "config:set": [],
                                             "rollback": []}
            try:
                for i in range(args.rounds):
                    def same_tree(i: int = i) -> None:
                        git("commit", "-q", "--allow-empty", "-m", f"same tree {i}", cwd=work)
                        result = push(work, bench.remote(app))
                        if result.returncode != 0 or "reusing slug" not in result.stderr:
                            raise RuntimeError(f"push did not reuse the slug:\n{result.stderr}")

                    def config(i: int = i) -> None:
                        set_config(bench.layout, bench.settings, app=app,
                                   changes={"GREETING": f"Hi {i}"}, user=EMAIL, out=Quiet(),
                                   docker=client)

                    def back() -> None:
                        rollback(bench.layout, bench.settings, app=app, version=None,
                                 user=EMAIL, out=Quiet(), docker=client)

                    times["push, unchanged tree"].append(until_live(bench, app, same_tree))
                    times["config:set"].append(until_live(bench, app, config))
                    times["rollback"].append(until_live(bench, app, back))
            finally:
                client.close()
    floor = median(floors)
    rows: list[list[object]] = [
        [name, median(v), min(v), max(v), median(v) / floor] for name, v in times.items()
    ]
    rows.append(["docker run floor", floor, min(floors), max(floors), 1.0])
    print("### redeploy and rollback (examples/python-plain)\n")
    print(table(["operation -> first 200 of the new release", "median s", "min s", "max s",
                 "ratio vs floor"], rows))
    print()
    for name, v in times.items():
        ratio = median(v) / floor
        print(target(f"{name} {ratio:.2f}x floor <= {RATIO_TARGET:g}x", ratio <= RATIO_TARGET))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
