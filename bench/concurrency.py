"""Benchmark: 5 apps pushed at once, then 20 ``config:set`` at once on one app (issue #7.4).

Reports the wall time of each burst and checks afterwards that every push succeeded, that every
app's release numbers are contiguous (v1..vN, no gaps, no duplicates) and that each app serves
its latest release through the router.
Usage: ``.venv/bin/python bench/concurrency.py [--apps N] [--configs N]``
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from _common import (
    EMAIL,
    PushResult,
    docker_client,
    ensure_stack_image,
    example_tree,
    platform,
    push,
    table,
    target,
    wait_for_body,
)
from redeploy_and_rollback import Quiet

from release.config import set_config
from release.store import ReleaseStore


def contiguous(versions: list[int]) -> bool:
    return versions == list(range(1, len(versions) + 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5)
    parser.add_argument("--configs", type=int, default=20)
    args = parser.parse_args()
    ensure_stack_image()
    with tempfile.TemporaryDirectory(prefix="shipway-bench-conc-") as tmp:
        with platform(launch_boot_timeout=120.0) as bench:
            apps = [bench.create_app(f"conc{i}") for i in range(args.apps)]
            works = [example_tree(Path(tmp) / app, "python-plain") for app in apps]
            results: dict[str, PushResult] = {}

            def push_app(app: str, work: Path) -> None:
                results[app] = push(work, bench.remote(app))

            started = time.perf_counter()
            threads = [threading.Thread(target=push_app, args=(a, w)) for a, w in zip(apps, works, strict=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            pushes_seconds = time.perf_counter() - started
            pushed_ok = sum(1 for r in results.values() if r.returncode == 0)
            for app, r in results.items():
                if r.returncode != 0:
                    print(f"push to {app} failed:\n{r.stderr[-1500:]}")

            target_app = apps[0]
            errors: list[str] = []

            def configure(i: int) -> None:
                client = docker_client()
                try:
                    release = set_config(bench.layout, bench.settings, app=target_app,
                                         changes={f"KEY_{i}": str(i)}, user=EMAIL, out=Quiet(),
                                         docker=client)
                    if release.status != "succeeded":
                        errors.append(f"{release.name}: {release.status} {release.failure}")
                except Exception as exc:  # noqa: BLE001 - counted and shown below
                    errors.append(f"KEY_{i}: {exc}")
                finally:
                    client.close()

            started = time.perf_counter()
            threads = [threading.Thread(target=configure, args=(i,)) for i in range(args.configs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            configs_seconds = time.perf_counter() - started
            for line in errors:
                print(f"config:set failed: {line}")

            store = ReleaseStore(bench.layout)
            gaps = [app for app in apps if not contiguous(store.versions(app))]
            serving = 0
            for app in apps:
                latest = store.latest(app)
                if latest is None:
                    continue
                try:
                    wait_for_body(bench.settings.router_port, f"{app}.localhost",
                                  f"(release {latest.name})", timeout=30)
                    serving += 1
                except TimeoutError:
                    print(f"{app} does not serve {latest.name}")
            final = store.latest(target_app)
            all_keys = final is not None and all(
                f"KEY_{i}" in final.config for i in range(args.configs))
            config_releases = len(store.versions(target_app)) - 2  # v1 create, v2 deploy
    print("### concurrency\n")
    print(table(["burst", "wall s", "succeeded", "release numbers contiguous"], [
        [f"{args.apps} apps pushed at once", pushes_seconds, f"{pushed_ok}/{args.apps}",
         "yes" if not gaps else f"no: {gaps}"],
        [f"{args.configs} config:set at once on one app", configs_seconds,
         f"{args.configs - len(errors)}/{args.configs} ({config_releases} releases)",
         "yes" if target_app not in gaps else "no"],
    ]))
    print()
    print(f"apps serving their latest release: {serving}/{args.apps}; "
          f"last release holds all {args.configs} keys: {'yes' if all_keys else 'no'}")
    ok = (pushed_ok == args.apps and not gaps and not errors and serving == args.apps
          and all_keys and config_releases == args.configs)
    print(target("every push and config:set succeeded, releases contiguous, latest served", ok))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
