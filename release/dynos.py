"""Dynos of an app: scale, restart, list (``ps``) and their logs."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from builder.slug import SlugArchive
from release import dynolog
from release.formation import Formation, check_counts, read_formation, write_formation
from release.launch import (
    LABEL_DYNO,
    LABEL_RELEASE,
    Dyno,
    app_containers,
    dyno_of,
    dynos,
    keep_alive,
    remove_now,
    route_to,
    slug_image,
    start_dyno,
    stop_later,
    wait_for_boot,
)
from release.oneoff import LABEL_ONEOFF, ONEOFF_TYPE, oneoff_containers, oneoffs
from release.oneoff import stop as stop_oneoff
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


def _slot_matches(target: str | None, process_type: str, index: int) -> bool:
    return target in (None, process_type, f"{process_type}.{index}")


def restart(layout: Layout, settings: Settings, *, app: str, docker: Any,
            target: str | None = None) -> Release:
    """Replace the dynos of the current release (all, one type ``web`` or one dyno ``web.1``);
    traffic moves only once the new ones are up."""
    store = ReleaseStore(layout)
    with store.lock(app):
        current = _running_release(layout, app)
        slug = SlugArchive(layout).get(current.slug)
        counts = read_formation(layout, app).for_types(slug.process_types)
        chosen = [(t, i) for t, q in counts.items() for i in range(1, q + 1)
                  if _slot_matches(target, t, i)]
        if target is not None and not chosen:
            raise NotFound(f"No such dyno or process type {target} on {app}.",
                           hint=f"See shipway ps -a {app}.")
        image = slug_image(layout, settings, slug, docker=docker, out=_Quiet())
        new: list[Any] = []
        try:
            for process_type, index in chosen:
                new.append(start_dyno(docker, layout, settings, image, current, process_type,
                                      index, slug.process_types[process_type]))
            wait_for_boot(new, settings)
        except BaseException:
            remove_now(new)
            raise
        keep_alive(new)
        ids = {c.id for c in new}
        old: list[Any] = []
        stay: list[Any] = []
        for container in app_containers(docker, app, layout=layout):
            if container.id in ids:
                continue
            dyno = dyno_of(container)
            replaced = _slot_matches(target, dyno.process_type, dyno.index)
            (old if replaced or dyno.release != current.version else stay).append(container)
        route_to(layout, current, new + stay)
        stop_later(old, settings)
    return current


def stop(layout: Layout, settings: Settings, *, app: str, target: str, docker: Any) -> list[str]:
    """``ps:stop``: a one-off dyno ends; formation dynos (``web.1`` or every ``web``) are
    stopped and, as on Heroku, started again by the formation."""
    if target.startswith(f"{ONEOFF_TYPE}."):
        stop_oneoff(layout, settings, app=app, name=target, docker=docker)
        return [target]
    store = ReleaseStore(layout)
    with store.lock(app):
        _running_release(layout, app)
        found = [c for c in app_containers(docker, app, layout=layout)
                 if _slot_matches(target, dyno_of(c).process_type, dyno_of(c).index)]
        if not found:
            raise NotFound(f"No such dyno or process type {target} on {app}.",
                           hint=f"See shipway ps -a {app}.")
        thread = stop_later(found, settings)
        if thread is not None:
            thread.join()
        reconcile_app(layout, settings, app, docker=docker)
    return sorted({c.labels.get(LABEL_DYNO, "") for c in found})


def processes(layout: Layout, *, app: str, docker: Any) -> list[Dyno]:
    """Every dyno of the app, by process type and number, draining ones too."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    return dynos(docker, layout, app)


def ps(layout: Layout, *, app: str, docker: Any) -> list[Dyno]:
    """What ``ps`` shows: the current release's dynos (not those still draining after a switch),
    then the running one-off dynos."""
    found = processes(layout, app=app, docker=docker)
    current = ReleaseStore(layout).current(app)
    version = current.version if current is not None else None
    return [d for d in found if d.release == version and not dynolog.is_stopping(layout, d.id)] \
        + oneoffs(docker, layout, app)


def _prefixed(container: Any, text: bytes) -> Iterator[str]:
    dyno = container.labels.get(LABEL_DYNO) or container.labels.get(LABEL_ONEOFF, "?")
    for raw in text.decode("utf-8", errors="replace").splitlines():
        stamp, _, line = raw.partition(" ")
        yield f"{dynolog.from_docker(stamp)} app[{dyno}]: {line}"


def _containers(layout: Layout, app: str, docker: Any) -> list[Any]:
    """The app's dynos with their output still in Docker: formation dynos and one-offs."""
    return app_containers(docker, app, layout=layout) + oneoff_containers(docker, layout, app)


def logs(layout: Layout, *, app: str, docker: Any, tail: int = 100,
         follow: bool = False) -> Iterator[str]:
    """stdout/stderr of the app's dynos, ``TIME app[web.1]: line``, oldest first."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    containers = sorted(_containers(layout, app, docker),
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
            follow_new(_containers(layout, app, docker), "all")
