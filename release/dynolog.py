"""Dyno state changes as log lines with source ``shipway``: ``logs/shipway/NAME.log``.

``2026-01-01T10:00:00.000000+00:00 shipway[web.1]: State changed from starting to up``, one
line per change, appended in one ``write`` (lines from several processes never interleave).
The launcher calls ``starting``/``up``/``stopping``/``stopped``; the supervisor calls ``died``
for every dyno Docker saw exit, which is a crash unless Shipway was stopping it (a marker in
``run/stopping/`` says so, since the stop may come from another process, a CLI).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipway.layout import Layout

# the labels release/launch.py writes (not imported: launch.py imports this module)
APP, DYNO, HOME = "shipway.app", "shipway.dyno", "shipway.home"


def shipway_log(layout: Layout, app: str) -> Path:
    return layout.logs_dir / "shipway" / f"{layout.app_dir(app).name}.log"


def stamp(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).isoformat(timespec="microseconds")


def from_docker(text: str) -> str:
    """Docker's ``...T10:00:00.123456789Z`` as ``...T10:00:00.123456+00:00``, like every other
    log line (Heroku's shape)."""
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        when = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return text
    digits = frac[:len(frac) - len(frac.lstrip("0123456789"))]
    return stamp(when.replace(microsecond=int((digits + "000000")[:6])))


def record(layout: Layout, app: str, dyno: str, text: str) -> None:
    path = shipway_log(layout, app)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"{stamp()} shipway[{dyno}]: {text}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _whose(container: Any) -> tuple[Layout, str, str] | None:
    labels = getattr(container, "labels", None) or {}
    if not (labels.get(HOME) and labels.get(APP) and labels.get(DYNO)):
        return None
    return Layout(Path(labels[HOME])), labels[APP], labels[DYNO]


def _note(container: Any, text: str) -> None:
    found = _whose(container)
    if found is not None:
        with contextlib.suppress(OSError):
            record(*found, text)


def starting(container: Any, command: str) -> None:
    _note(container, f"Starting process with command `{command}`")


def up(containers: Iterable[Any]) -> None:
    for container in containers:
        _note(container, "State changed from starting to up")


def _marker(layout: Layout, container_id: str) -> Path:
    return layout.run_dir / "stopping" / container_id


def stopping(container: Any) -> None:
    """Shipway is about to stop this dyno: its exit is not a crash."""
    found = _whose(container)
    if found is None:
        return
    with contextlib.suppress(OSError):
        marker = _marker(found[0], container.id)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        record(*found, "Stopping all processes with SIGTERM")


def removing(container: Any) -> None:
    """Shipway removes this container at once (a failed boot, a stray): no crash line."""
    found = _whose(container)
    if found is not None:
        with contextlib.suppress(OSError):
            marker = _marker(found[0], container.id)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()


def draining(containers: Iterable[Any]) -> None:
    """These dynos are on their way out (``ps`` no longer counts them); no crash line either."""
    for container in containers:
        removing(container)


def is_stopping(layout: Layout, container_id: str) -> bool:
    return _marker(layout, container_id).exists()


def removed(container: Any) -> None:
    found = _whose(container)
    if found is not None:
        _marker(found[0], container.id).unlink(missing_ok=True)


def stopped(container: Any, status: int | None) -> None:
    found = _whose(container)
    if found is None:
        return
    with contextlib.suppress(OSError):
        if status is not None:
            record(*found, f"Process exited with status {status}")
        record(*found, "State changed from up to down")
        _marker(found[0], container.id).unlink(missing_ok=True)


def died(layout: Layout, event: dict[str, Any]) -> None:
    """A Docker ``die`` event of one of this home's dynos: a crash unless Shipway stopped it."""
    attrs = (event.get("Actor") or {}).get("Attributes") or {}
    app, dyno = attrs.get(APP), attrs.get(DYNO)
    container_id = str((event.get("Actor") or {}).get("ID") or event.get("id") or "")
    if not app or not dyno or not container_id or dyno.startswith("release."):
        return
    if _marker(layout, container_id).exists():
        return
    with contextlib.suppress(OSError):
        record(layout, app, dyno, f"Process exited with status {attrs.get('exitCode', '?')}")
        record(layout, app, dyno, "State changed from up to crashed")
