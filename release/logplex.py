"""An app's log: its dynos' output (``app``), the router's request lines (``router``) and dyno
state changes (``shipway``), merged in time order, as ``heroku logs`` shows them::

    2026-01-01T10:00:00.123456+00:00 shipway[web.1]: State changed from starting to up
    2026-01-01T10:00:01.250000+00:00 router: at=info method=GET path="/" host=shop.localhost
        request_id=... fwd="127.0.0.1" dyno=web.1 connect=0ms service=3ms status=200 bytes=176
        protocol=http
    2026-01-01T10:00:01.251234567Z app[web.1]: GET / 200

Router lines come from nginx's access log (one JSON object per request, ``shipway/nginx.py``),
rendered here; app lines from Docker (``release/dynos.py``); shipway lines from
``release/dynolog.py``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from release import dynolog
from release.dynos import logs as dyno_logs
from release.oneoff import oneoff_log
from shipway import nginx
from shipway.errors import NotFound, UsageError
from shipway.layout import Layout

SOURCES = ("app", "router", "shipway")
FOLLOW_POLL = 0.2
# Heroku's router error codes for what our router answers itself
ERRORS = {503: ("H14", "No web processes running"), 502: ("H13", "Connection closed without response"),
          504: ("H12", "Request timeout")}


def check_source(source: str | None) -> str | None:
    if source not in (None, "", *SOURCES):
        raise UsageError(f"Unknown log source {source!r}: use {', '.join(SOURCES)}.")
    return source or None


def _millis(value: str) -> str:
    """``0.003`` -> ``3ms``; the last try's time when nginx tried several dynos."""
    last = value.replace(":", ",").split(",")[-1].strip()
    try:
        return f"{round(float(last) * 1000)}ms"
    except ValueError:
        return ""


def router_line(raw: str) -> str | None:
    """One access-log JSON object as Heroku's router line, or None when it is not one."""
    try:
        entry: dict[str, str] = json.loads(raw)
        when = datetime.fromtimestamp(float(entry["time"]), UTC)
        status = int(entry["status"])
    except (ValueError, KeyError, TypeError):
        return None
    head = "at=info"
    failed = ERRORS.get(status)
    if failed and (not entry.get("upstream_status") or _millis(entry.get("connect", "")) == ""):
        head = f'at=error code={failed[0]} desc="{failed[1]}"'
    fields = (f'method={entry.get("method", "")} path="{entry.get("path", "")}" '
              f'host={entry.get("host", "")} request_id={entry.get("request_id", "")} '
              f'fwd="{entry.get("fwd", "")}" dyno={entry.get("dyno", "")} '
              f'connect={_millis(entry.get("connect", ""))} '
              f'service={_millis(entry.get("service", ""))} status={status} '
              f'bytes={entry.get("bytes", "")} protocol={entry.get("protocol", "")}')
    return f"{dynolog.stamp(when)} router: {head} {fields}"


def _last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a file, read from its end (router logs grow large)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return []
    with fh:
        end = fh.seek(0, 2)
        block, data = 64 * 1024, b""
        position = end
        while position > 0 and data.count(b"\n") <= count:
            position = max(0, position - block)
            fh.seek(position)
            data = fh.read(end - position)
        lines = data.decode("utf-8", errors="replace").splitlines()
        if position > 0:
            lines = lines[1:]  # the first one is cut
        return lines[-count:] if count else lines


def sort_key(line: str) -> tuple[str, str]:
    """The UTC time a line starts with, for merging (Docker's stamps have up to 9 fraction
    digits and end in Z, ours have 6 and end in +00:00)."""
    stamp = line.split(" ", 1)[0]
    fraction = stamp[20:] if stamp[19:20] == "." else ""
    digits = fraction[:len(fraction) - len(fraction.lstrip("0123456789"))]
    return stamp[:19], digits.ljust(9, "0")


def _file_source(path: Path, render: Callable[[str], str | None]) -> Callable[[int], list[str]]:
    def tail(count: int) -> list[str]:
        out = [render(line) for line in _last_lines(path, count)]
        return [line for line in out if line]
    return tail


DYNO_OF_LINE = re.compile(r"\S+ (?:app|shipway)\[(?P<dyno>[^\]]+)\]: ")


def check_dyno(dyno: str | None) -> str | None:
    if dyno and not re.fullmatch(r"[a-z][a-z0-9_-]*(\.\d+)?", dyno):
        raise UsageError(f"{dyno!r} is not a dyno or process type: use e.g. web, web.1, run.1234.")
    return dyno or None


def of_dyno(line: str, dyno: str) -> bool:
    """True for a line of dyno ``web.1`` (``dyno`` names it) or of type ``web``."""
    found = DYNO_OF_LINE.match(line)
    return found is not None and dyno in (found["dyno"], found["dyno"].rpartition(".")[0])


def logs(layout: Layout, *, app: str, docker: Any, tail: int = 100, follow: bool = False,
         source: str | None = None, dyno: str | None = None) -> Iterator[str]:
    """The app's log lines, oldest first; ``source`` keeps one of app, router, shipway and
    ``dyno`` the lines of one dyno (``web.1``, ``run.1234``) or process type (``web``)."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    source = check_source(source)
    dyno = check_dyno(dyno)
    wanted: tuple[str, ...] = SOURCES if source is None else (source,)
    if dyno is not None:
        wanted = tuple(w for w in wanted if w != "router")  # router lines belong to no dyno
    files = {
        "router": (nginx.router_log(layout, app), router_line),
        "shipway": (dynolog.shipway_log(layout, app), lambda line: line or None),
        # ended one-off dynos' output, kept by release/oneoff.py when it removed them
        "app": (oneoff_log(layout, app), lambda line: line or None),
    }
    lines: list[str] = []
    if "app" in wanted:
        lines += list(dyno_logs(layout, app=app, docker=docker, tail=tail))
    for name in wanted:
        if name in files:
            path, render = files[name]
            lines += _file_source(path, render)(tail)
    if dyno is not None:
        lines = [line for line in lines if of_dyno(line, dyno)]
    lines.sort(key=sort_key)
    shown = lines[-tail:] if tail else lines
    yield from shown
    if not follow:
        return
    found: queue.Queue[str] = queue.Queue()
    cutoff = sort_key(shown[-1]) if shown else ("", "")
    if dyno is not None:
        found = _Filtered(dyno)
    if "app" in wanted:
        threading.Thread(target=_pump_app, args=(layout, app, docker, cutoff, found),
                         daemon=True).start()
    for name in wanted:
        if name in files and name != "app":  # a one-off's lines come live from Docker
            path, render = files[name]
            threading.Thread(target=_pump_file, args=(path, render, found), daemon=True).start()
    while True:
        yield found.get()


class _Filtered(queue.Queue[str]):
    """A queue that takes only the lines of one dyno or process type."""

    def __init__(self, dyno: str) -> None:
        super().__init__()
        self.dyno = dyno

    def put(self, item: str, block: bool = True, timeout: float | None = None) -> None:
        if of_dyno(item, self.dyno):
            super().put(item, block, timeout)


def _pump_app(layout: Layout, app: str, docker: Any, cutoff: tuple[str, str],
              found: queue.Queue[str]) -> None:
    with contextlib.suppress(Exception):
        for line in dyno_logs(layout, app=app, docker=docker, tail=1, follow=True):
            if sort_key(line) > cutoff:  # the lines shown already come again first
                found.put(line)


def _pump_file(path: Path, render: Callable[[str], str | None], found: queue.Queue[str]) -> None:
    """Follow a file from its current end, as ``tail -F`` does (it may not exist yet)."""
    position = path.stat().st_size if path.exists() else 0
    pending = b""
    while True:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < position:
            position = 0  # truncated or replaced
        if size > position:
            with path.open("rb") as fh:
                fh.seek(position)
                data = fh.read(size - position)
            position += len(data)
            pending += data
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = render(raw.decode("utf-8", errors="replace"))
                if line:
                    found.put(line)
        time.sleep(FOLLOW_POLL)
