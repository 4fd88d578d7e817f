"""Local commands for releases, config vars and dynos (Heroku's wording and layout).

Each command calls one function of ``release/`` with a real Docker client; nothing here decides
anything the HTTP API would have to decide again.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import shipway.log
from release.config import config_var, config_vars, parse_assignments, set_config
from release.dynos import logs, processes, restart, scale
from release.formation import parse_counts, read_formation
from release.launch import Dyno
from release.records import Release
from release.rollback import rollback, rollback_target
from release.store import ReleaseStore
from shipway.cli import Context, add_app_option, context
from shipway.errors import NotFound, UsageError
from shipway.layout import Layout
from shipway.names import check_app_name, check_config_key


class ConsoleOutput:
    """Lines to stdout; fatal lines to stderr as `` !     message``."""

    def line(self, text: str) -> None:
        print(text, flush=True)

    def error(self, text: str) -> None:
        print(f" !     {text}", file=sys.stderr, flush=True)


class _Stderr:
    """Whatever sys.stderr is at write time (tests swap it between commands)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def local_context(args: argparse.Namespace) -> Context:
    """The data home and settings; structured logs go to stderr, warnings and up only, so
    stdout holds just what the command prints."""
    shipway.log.configure(stream=cast(TextIO, _Stderr()), level=logging.WARNING)
    return context(args)


def local_user() -> str:
    return os.environ.get("SHIPWAY_USER") or f"{getpass.getuser()}@{socket.gethostname()}"


def docker_client() -> Any:
    import docker

    return docker.from_env()


def parse_time(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def ago(stamp: str, now: datetime | None = None) -> str:
    """``5 minutes ago``, the way Heroku's release list puts it."""
    then = parse_time(stamp)
    if then is None:
        return stamp
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "less than a minute ago"


def short_age(stamp: str, now: datetime | None = None) -> str:
    """``2m``, ``3h``: how long a dyno has been in its state."""
    then = parse_time(stamp)
    if then is None:
        return "?"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def version_arg(text: str | None) -> int | None:
    if text is None:
        return None
    digits = text.lower().removeprefix("v")
    if not digits.isdigit():
        raise UsageError(f"{text!r} is not a release version: use vN, e.g. v12.")
    return int(digits)


def app_of(args: argparse.Namespace, layout: Layout) -> str:
    app = check_app_name(args.app)
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    return str(app)


def status_note(release: Release) -> str:
    if release.status == "failed":
        if release.failure.startswith("release command failed"):
            return " (release command failed)"
        return " (failed)"
    if release.status == "pending":
        return " (pending)"
    return ""


def columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


# config vars --------------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    config = config_vars(ctx.layout, app)
    if args.json:
        print(json.dumps(config, indent=2, ensure_ascii=False))
        return 0
    print(f"=== {app} Config Vars")
    width = max((len(k) for k in config), default=0) + 1
    for key in sorted(config):
        print(f"{(key + ':').ljust(width)} {config[key]}")
    return 0


def cmd_config_get(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    print(config_var(ctx.layout, app_of(args, ctx.layout), check_config_key(args.key)))
    return 0


def _change_config(args: argparse.Namespace, changes: dict[str, str | None], verb: str) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    release = set_config(ctx.layout, ctx.settings, app=app, changes=changes, user=local_user(),
                         out=ConsoleOutput(), docker=docker_client())
    keys = ", ".join(changes)
    restarting = " and restarting" if release.slug else ""
    outcome = "done" if release.status == "succeeded" else "failed"
    print(f"{verb} {keys}{restarting} {app}... {outcome}, {release.name}")
    for key, value in changes.items():
        if value is not None:
            print(f"{key}: {value}")
    return 0 if release.status == "succeeded" else 1


def cmd_config_set(args: argparse.Namespace) -> int:
    return _change_config(args, parse_assignments(args.pairs), "Setting")


def cmd_config_unset(args: argparse.Namespace) -> int:
    changes: dict[str, str | None] = {check_config_key(k): None for k in args.keys}
    return _change_config(args, changes, "Unsetting")


# releases -----------------------------------------------------------------------------------
def cmd_releases(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    if args.num < 1:
        raise UsageError("-n must be 1 or more.")
    store = ReleaseStore(ctx.layout)
    releases = list(reversed(store.list(app)))[: args.num]
    current = store.current(app)
    if args.json:
        current_version = current.version if current is not None else 0
        print(json.dumps([release_json(r, current_version) for r in releases], indent=2,
                         ensure_ascii=False))
        return 0
    suffix = f" - Current: {current.name}" if current is not None else ""
    print(f"=== {app} Releases{suffix}")
    rows = [[r.name, r.description + status_note(r), r.user, ago(r.created_at)]
            for r in releases]
    for line in columns(rows):
        print(line)
    return 0


def release_json(release: Release, current: int) -> dict[str, Any]:
    return {
        "version": release.version, "description": release.description,
        "status": release.status, "user": release.user, "created_at": release.created_at,
        "updated_at": release.updated_at, "slug": release.slug, "commit": release.commit,
        "addons": list(release.addons), "failure": release.failure,
        "current": release.version == current,
    }


def _release(store: ReleaseStore, app: str, version: int | None) -> Release:
    if version is None:
        latest = store.latest(app)
        if latest is None:
            raise NotFound(f"{app} has no releases.")
        return latest
    return store.get(app, version)


def cmd_releases_info(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    release = _release(ReleaseStore(ctx.layout), app, version_arg(args.version))
    status = release.status + (f": {release.failure}" if release.failure else "")
    print(f"=== Release {release.name}")
    print(f"Change:  {release.description}")
    print(f"By:      {release.user}")
    print(f"When:    {release.created_at} ({ago(release.created_at)})")
    print(f"Addons:  {', '.join(release.addons) or '(none)'}")
    print("Config:")
    for key in sorted(release.config):
        print(f"  {key} => {release.config[key]}")
    print(f"Commit:  {release.commit or '(none)'}"
          + (f" {release.commit_description}" if release.commit_description else ""))
    print(f"Slug:    {release.slug or '(none)'}")
    print(f"Status:  {status}")
    return 0


def cmd_releases_output(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    release = _release(ReleaseStore(ctx.layout), app, version_arg(args.version))
    if not release.output:
        raise NotFound(f"{release.name} has no output: nothing was built or launched.")
    try:
        with open(release.output, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                sys.stdout.write(line)
    except FileNotFoundError:
        raise NotFound(f"The output of {release.name} is gone ({release.output}).") from None
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    from shipway.addons.service import rollback_warnings

    store = ReleaseStore(ctx.layout)
    # resolved here too, to say which add-ons stay attached; rollback() checks it again
    target = rollback_target(store, ctx.layout, app, version_arg(args.version))
    release = rollback(ctx.layout, ctx.settings, app=app, version=target.version,
                       user=local_user(), out=ConsoleOutput(), docker=docker_client())
    if release.status != "succeeded":
        return 1
    for line in rollback_warnings(ctx.layout, app, target):
        print(line)
    return 0


# dynos --------------------------------------------------------------------------------------
STATE_WORDS = {"running": "up", "restarting": "crashed", "exited": "crashed",
               "created": "starting", "dead": "crashed", "paused": "idle"}


def dyno_line(dyno: Dyno) -> str:
    state = STATE_WORDS.get(dyno.state, dyno.state)
    return f"{dyno.name}: {state} {short_age(dyno.started_at)} (v{dyno.release})"


def cmd_ps(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    found = processes(ctx.layout, app=app, docker=docker_client())
    if not found:
        print(f"No dynos on {app}")
        return 0
    commands = _commands(ctx.layout, app)
    for process_type in sorted({d.process_type for d in found}):
        group = [d for d in found if d.process_type == process_type]
        print(f"=== {process_type} ({len(group)}): {commands.get(process_type, '')}".rstrip())
        for dyno in group:
            print(dyno_line(dyno))
        print()
    return 0


def _commands(layout: Layout, app: str) -> dict[str, str]:
    from builder.slug import SlugArchive

    current = ReleaseStore(layout).current(app)
    if current is None or not current.slug:
        return {}
    try:
        return SlugArchive(layout).get(current.slug).process_types
    except NotFound:
        return {}


def cmd_ps_scale(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    counts = parse_counts(args.pairs)
    if not counts:
        raise UsageError("Usage: shipway ps:scale web=2 worker=1 -a APP")
    scale(ctx.layout, ctx.settings, app=app, counts=counts, docker=docker_client())
    formation = read_formation(ctx.layout, app)
    now = ", ".join(f"{t} at {formation.quantity(t)}" for t in counts)
    print(f"Scaling dynos... done, now running {now}")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    restart(ctx.layout, ctx.settings, app=app, docker=docker_client())
    print(f"Restarting dynos on {app}... done")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    ctx = local_context(args)
    app = app_of(args, ctx.layout)
    if args.tail < 0:
        raise UsageError("--tail must be 0 or more.")
    for line in logs(ctx.layout, app=app, docker=docker_client(), tail=args.tail,
                     follow=args.follow):
        print(line, flush=True)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="show an app's config vars")
    add_app_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("config:get", help="show one config var's value")
    p.add_argument("key")
    add_app_option(p)
    p.set_defaults(func=cmd_config_get)

    p = sub.add_parser("config:set", help="set config vars (a new release, relaunched)")
    p.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    add_app_option(p)
    p.set_defaults(func=cmd_config_set)

    p = sub.add_parser("config:unset", help="remove config vars (a new release, relaunched)")
    p.add_argument("keys", nargs="+", metavar="KEY")
    add_app_option(p)
    p.set_defaults(func=cmd_config_unset)

    p = sub.add_parser("releases", help="list an app's releases, newest first")
    p.add_argument("-n", "--num", type=int, default=15)
    p.add_argument("--json", action="store_true")
    add_app_option(p)
    p.set_defaults(func=cmd_releases)

    p = sub.add_parser("releases:info", help="show one release (default: the latest)")
    p.add_argument("version", nargs="?")
    add_app_option(p)
    p.set_defaults(func=cmd_releases_info)

    p = sub.add_parser("releases:output", help="show a release's build and launch log")
    p.add_argument("version", nargs="?")
    add_app_option(p)
    p.set_defaults(func=cmd_releases_output)

    p = sub.add_parser("rollback", help="roll back to an earlier release (default: the previous)")
    p.add_argument("version", nargs="?")
    add_app_option(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("ps", help="list an app's dynos")
    add_app_option(p)
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("ps:scale", help="scale process types, e.g. web=2 worker=1")
    p.add_argument("pairs", nargs="+", metavar="TYPE=QUANTITY")
    add_app_option(p)
    p.set_defaults(func=cmd_ps_scale)

    p = sub.add_parser("restart", help="restart every dyno of an app")
    add_app_option(p)
    p.set_defaults(func=cmd_restart)

    p = sub.add_parser("logs", help="show (or follow) an app's dyno output")
    p.add_argument("--tail", "-n", type=int, default=100)
    p.add_argument("-f", "--follow", action="store_true")
    add_app_option(p)
    p.set_defaults(func=cmd_logs)
