"""Route files: where an app's traffic goes, ``run/routes/NAME.toml``, and nginx's copy of it.

``release = 12``, ``backends = ["127.0.0.1:49153", ...]`` and ``dynos = ["web.1", ...]`` (the
dyno behind each backend, for router log lines). ``write_route`` writes the file atomically and
then renders it for the running router (``shipway/nginx.py``) and reloads it gracefully, so every
caller that moves traffic (deploy, rollback, config, scale, restart, reconcile) switches nginx.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from shipway import nginx
from shipway.files import write_atomically
from shipway.layout import Layout
from shipway.names import check_app_name


@dataclass(frozen=True, slots=True)
class Route:
    """Where an app's traffic goes, kept in ``run/routes/NAME.toml``."""

    app: str
    release: int
    backends: tuple[str, ...] = field(default_factory=tuple)
    dynos: tuple[str, ...] = field(default_factory=tuple)


def routes_dir(layout: Layout) -> Path:
    return layout.run_dir / "routes"


def route_file(layout: Layout, app: str) -> Path:
    return routes_dir(layout) / f"{check_app_name(app)}.toml"


def write_route(layout: Layout, route: Route) -> None:
    """Keep the route and apply it to the running router; returns once nginx serves it."""
    doc = {"release": route.release, "backends": list(route.backends),
           "dynos": list(route.dynos)}
    write_atomically(route_file(layout, route.app), tomli_w.dumps(doc))
    nginx.sync_app(layout, route.app, route.backends, route.dynos)


def read_route(path: Path, app: str) -> Route:
    doc = tomllib.loads(path.read_text("utf-8"))
    return Route(app, int(doc.get("release", 0)), tuple(str(b) for b in doc.get("backends", [])),
                 tuple(str(d) for d in doc.get("dynos", [])))


def remove_route(layout: Layout, app: str) -> None:
    """No traffic for the app (no release runs): it answers 503 while it exists."""
    route_file(layout, app).unlink(missing_ok=True)
    if layout.app_file(app).exists():
        nginx.sync_app(layout, app, (), ())
    else:
        nginx.drop_app(layout, app)
