"""``apps``, ``apps:info``, ``apps:destroy``, ``git:remote``, ``git:clone``, ``open``, and the
remote half of ``apps:create`` (registered in core.py with its local admin half)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import webbrowser
from typing import Any

from shipway.cli import add_app_option
from shipway.client import (
    REMOTE_NAME,
    AppInfo,
    backend_for,
    git_remote_url,
    in_git_repository,
    json_dump,
)
from shipway.client import app_name as app_of
from shipway.errors import ShipwayError, UsageError
from shipway.openapi import app_json


def set_git_remote(url: str) -> str:
    """Point the ``platform`` remote of the repository here at ``url``; says what it did."""
    verb = "set-url" if git_remote_url() is not None else "add"
    found = subprocess.run(["git", "remote", verb, REMOTE_NAME, url], capture_output=True,
                           text=True, check=False)
    if found.returncode != 0:
        raise ShipwayError(f"git remote {verb} failed: {found.stderr.strip()}")
    return f"set git remote {REMOTE_NAME} to {url}"


def create(args: argparse.Namespace, owner: str | None = None) -> int:
    """``apps:create [NAME]``: through the API, or on the data home when ``owner`` is given."""
    backend = backend_for(args, owner=owner)
    info = backend.create_app(args.name)
    print(f"Creating {info.name}... done")
    print(f"{info.web_url} | {info.git_url}")
    if not getattr(args, "no_remote", False) and in_git_repository():
        print(set_git_remote(info.git_url))
    return 0


def cmd_apps(args: argparse.Namespace) -> int:
    found = backend_for(args).apps()
    if args.json:
        print(json_dump([app_json(a) for a in found]))
        return 0
    if not found:
        print("You have no apps.")
        return 0
    print("=== Apps")
    for info in found:
        print(info.name)
    return 0


def info_lines(info: AppInfo) -> list[str]:
    rows = [
        ("Git URL", info.git_url), ("Web URL", info.web_url), ("Owner", info.owner),
        ("Collaborators", ", ".join(info.collaborators) or "(none)"),
        ("Buildpack", info.buildpack or "(detected)"), ("Stack", info.stack or "(default)"),
        ("Release", f"v{info.current_release}" if info.current_release else "(none)"),
        ("Created", info.created_at),
    ]
    width = max(len(k) for k, _ in rows) + 1
    return [f"=== {info.name}"] + [f"{(k + ':').ljust(width)} {v}" for k, v in rows]


def cmd_apps_info(args: argparse.Namespace) -> int:
    info = backend_for(args).app(app_of(args))
    if args.json:
        print(json_dump(app_json(info)))
        return 0
    for line in info_lines(info):
        print(line)
    return 0


def cmd_apps_destroy(args: argparse.Namespace) -> int:
    app = app_of(args)
    if args.confirm != app:
        raise UsageError(f"This destroys {app} and all its releases: confirm with "
                         f"--confirm {app}.")
    backend_for(args).destroy_app(app)
    print(f"Destroying {app} (including all add-ons)... done")
    return 0


def cmd_git_remote(args: argparse.Namespace) -> int:
    if not in_git_repository():
        raise UsageError("Not a git repository: run git:remote inside one.")
    info = backend_for(args).app(app_of(args))
    print(set_git_remote(info.git_url))
    return 0


def cmd_git_clone(args: argparse.Namespace) -> int:
    app = app_of(args)
    info = backend_for(args).app(app)
    folder = args.directory or app
    print(f"Cloning into '{folder}'...")
    found = subprocess.run(["git", "clone", "-q", "-o", REMOTE_NAME, info.git_url, folder],
                           check=False)
    if found.returncode != 0:
        raise ShipwayError(f"git clone of {app} failed.")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    info = backend_for(args).app(app_of(args))
    print(info.web_url)
    if not args.no_browser and _has_browser():
        webbrowser.open(info.web_url)
    return 0


def _has_browser() -> bool:
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("BROWSER") or shutil.which("open")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def register(sub: Any) -> None:
    p = sub.add_parser("apps", help="list your apps")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_apps)

    p = sub.add_parser("apps:info", help="show an app: URLs, owner, current release")
    add_app_option(p, required=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_apps_info)

    p = sub.add_parser("apps:destroy", help="destroy an app")
    add_app_option(p, required=False)
    p.add_argument("--confirm", metavar="APP", help="the app's name, to confirm")
    p.set_defaults(func=cmd_apps_destroy)

    p = sub.add_parser("git:remote", help=f"add (or fix) the '{REMOTE_NAME}' git remote")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_git_remote)

    p = sub.add_parser("git:clone", help="clone an app's repository")
    add_app_option(p, required=False)
    p.add_argument("directory", nargs="?")
    p.set_defaults(func=cmd_git_clone)

    p = sub.add_parser("open", help="print (and open) an app's URL")
    add_app_option(p, required=False)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_open)
