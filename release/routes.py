"""Route files, written by the launcher and read by the router: ``run/routes/NAME.toml``.

``release = 12`` and ``backends = ["127.0.0.1:49153", ...]``: written atomically, so the router
(which re-reads a file when its mtime changes) sees either the old set or the new one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from shipway.files import write_atomically
from shipway.layout import Layout
from shipway.names import check_app_name


@dataclass(frozen=True, slots=True)
class Route:
    """Where an app's traffic goes, kept in ``run/routes/NAME.toml``."""

    app: str
    release: int
    backends: tuple[str, ...] = field(default_factory=tuple)


def routes_dir(layout: Layout) -> Path:
    return layout.run_dir / "routes"


def route_file(layout: Layout, app: str) -> Path:
    return routes_dir(layout) / f"{check_app_name(app)}.toml"


def write_route(layout: Layout, route: Route) -> None:
    doc = {"release": route.release, "backends": list(route.backends)}
    write_atomically(route_file(layout, route.app), tomli_w.dumps(doc))


def read_route(path: Path, app: str) -> Route:
    doc = tomllib.loads(path.read_text("utf-8"))
    return Route(app, int(doc.get("release", 0)), tuple(str(b) for b in doc.get("backends", [])))


def remove_route(layout: Layout, app: str) -> None:
    route_file(layout, app).unlink(missing_ok=True)
