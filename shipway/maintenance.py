"""Maintenance mode: the router answers every request of the app with a 503 maintenance page
(Heroku's H80) while its dynos keep running. The flag is the file ``apps/NAME/maintenance``."""

from __future__ import annotations

from pathlib import Path

from shipway import nginx
from shipway.errors import NotFound
from shipway.files import write_atomically
from shipway.layout import Layout


def flag_file(layout: Layout, app: str) -> Path:
    return nginx.maintenance_flag(layout, app)


def in_maintenance(layout: Layout, app: str) -> bool:
    return flag_file(layout, app).exists()


def set_maintenance(layout: Layout, app: str, on: bool) -> bool:
    """Turn maintenance mode on or off; returns once the router answers accordingly."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    # one file made or removed atomically: no lock (the app lock is held through deploys)
    if on:
        write_atomically(flag_file(layout, app), "on\n")
    else:
        flag_file(layout, app).unlink(missing_ok=True)
    nginx.sync_app(layout, app)
    return on
