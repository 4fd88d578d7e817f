"""``maintenance``, ``maintenance:on``, ``maintenance:off`` (Heroku's wording)."""

from __future__ import annotations

import argparse
from typing import Any

from shipway.cli import add_app_option
from shipway.client import app_name, backend_for


def cmd_maintenance(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    print("on" if backend.app(app).maintenance else "off")
    return 0


def cmd_maintenance_on(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    backend.set_maintenance(app, True)
    print(f"Enabling maintenance mode for {app}... done")
    return 0


def cmd_maintenance_off(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    backend.set_maintenance(app, False)
    print(f"Disabling maintenance mode for {app}... done")
    return 0


def register(sub: Any) -> None:
    for command, func, text in (
        ("maintenance", cmd_maintenance, "say whether the app is in maintenance mode"),
        ("maintenance:on", cmd_maintenance_on,
         "answer every request with a 503 maintenance page (dynos keep running)"),
        ("maintenance:off", cmd_maintenance_off, "serve the app again"),
    ):
        p = sub.add_parser(command, help=text)
        add_app_option(p, required=False)
        p.set_defaults(func=func)
