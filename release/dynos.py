"""Dynos of an app: scale, restart, list (``ps``) and their logs."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from builder.slug import SlugArchive
from release.formation import Formation, check_counts, read_formation, write_formation
from release.launch import (
    LABEL_DYNO,
    LABEL_RELEASE,
    Dyno,
    app_containers,
    dynos,
    keep_alive,
    remove_now,
    route_to,
    slug_image,
    start_formation,
    stop_later,
    wait_for_boot,
)
from release.oneoff import oneoffs
from release.reconcile import _Quiet, reconcile_app
from release.records import Release
from release.store import ReleaseStore
from shipway.errors import Conflict, NotFound
from shipway.layout import Layout
from shipway.settings import Settings

FOLLOW_POLL = 2.0


def _running_release(layout: Layout, app: str) -> Release:
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    current = ReleaseStore(layout).current(app)
    if current is None or not current.slug:
        raise Conflict(f"{app} has no deployed code yet: push to deploy first.")
    return current


def scale(layout: Layout, settings: Settings, *, app: str, counts: Mapping[str, int],
          docker: Any) -> Formation:
    """Set process counts (kept in formation.toml) and start or stop dynos to match."""
    store = ReleaseStore(layout)
    with store.lock(app):
        current = _running_release(layout, app)
        slug = SlugArchive(layout).get(current.slug)
        check_counts(counts, slug.process_types)
        formation = read_formation(layout, app)
        updated = Formation(app, {**formation.counts, **counts})
        write_formation(layout, updated)
        reconcile_app(layout, settings, app, docker=docker)
    return updated


def restart(layout: Layout, settings: Settings, *, app: str, docker: Any) -> Release:
    """Replace every dyno of the current release; traffic moves only once the new ones are up."""
    store = ReleaseStore(layout)
    with store.lock(app):
        current = _running_release(layout, app)
        slug = SlugArchive(layout).get(current.slug)
        image = slug_image(layout, settings, slug, docker=docker, out=_Quiet())
        new = start_formation(layout, settings, current, slug, image, docker=docker)
        try:
            wait_for_boot(new, settings)
        except BaseException:
            remove_now(new)
            raise
        keep_alive(new)
        ids = {c.id for c in new}
        old = [c for c in app_containers(docker, app, layout=layout) if c.id not in ids]
        route_to(layout, current, new)
        stop_later(old, settings)
    return current


def processes(layout: Layout, *, app: str, docker: Any) -> list[Dyno]:
    """Every dyno of the app, by process type and number; running one-off dynos last."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    return dynos(docker, layout, app) + oneoffs(docker, layout, app)


def _prefixed(container: Any, text: bytes) -> Iterator[str]:
    dyno = container.labels.get(LABEL_DYNO, "?")
    for raw in text.decode("utf-8", errors="replace").splitlines():
        stamp, _, line = raw.partition(" ")
        yield f"{stamp} app[{dyno}]: {line}"


def logs(layout: Layout, *, app: str, docker: Any, tail: int = 100,
         follow: bool = False) -> Iterator[str]:
    """stdout/stderr of the app's dynos, ``TIME app[web.1]: line``, oldest first."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    containers = sorted(app_containers(docker, app, layout=layout),
                        key=lambda c: int(c.labels.get(LABEL_RELEASE, "0") or 0))
    lines: list[str] = []
    for container in containers:
        try:
            text = container.logs(stdout=True, stderr=True, timestamps=True, tail=tail)
        except Exception:  # noqa: BLE001 - removed while we read
            continue
        lines.extend(_prefixed(container, text))
    lines.sort()  # each line starts with its RFC 3339 time stamp
    yield from lines[-tail:] if tail else lines
    if not follow:
        return
    found: queue.Queue[str] = queue.Queue()

    def pump(container: Any, tail_lines: int | str) -> None:
        try:
            for chunk in container.logs(stdout=True, stderr=True, timestamps=True,
                                        stream=True, follow=True, tail=tail_lines):
                for line in _prefixed(container, chunk):
                    found.put(line)
        except Exception:  # noqa: BLE001 - the dyno went away
            return

    followed: set[str] = set()

    def follow_new(current: list[Any], tail_lines: int | str) -> None:
        for container in current:
            if container.id not in followed:
                followed.add(container.id)
                threading.Thread(target=pump, args=(container, tail_lines), daemon=True).start()

    follow_new(containers, 0)
    while True:
        try:
            yield found.get(timeout=FOLLOW_POLL)
        except queue.Empty:
            # dynos started since (a deploy, a restart, scaling) are followed from their start
            follow_new(app_containers(docker, app, layout=layout), "all")
