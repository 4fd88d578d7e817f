"""Commands for releases, config vars and dynos (Heroku's wording and layout).

Each command asks a ``shipway.client.Backend``: service functions on a data home (``--home``,
``$SHIPWAY_HOME``, or no server known) or the HTTP API after ``shipway login``; the output is
the same either way.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any

from builder.stack import describe
from release.config import parse_assignments
from release.formation import parse_counts
from release.launch import Dyno
from release.oneoff import ONEOFF_TYPE
from release.records import Release
from shipway.cli import add_app_option
from shipway.client import ListedRelease, app_name, backend_for
from shipway.errors import NotFound, ShipwayError, UsageError
from shipway.names import check_config_key


class ConsoleOutput:
    """Lines to stdout; fatal lines to stderr as `` !     message``."""

    def line(self, text: str) -> None:
        print(text, flush=True)

    def error(self, text: str) -> None:
        print(f" !     {text}", file=sys.stderr, flush=True)


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
    backend, app = backend_for(args), app_name(args)
    config = backend.config(app)
    if args.json:
        print(json.dumps(config, indent=2, ensure_ascii=False))
        return 0
    print(f"=== {app} Config Vars")
    width = max((len(k) for k in config), default=0) + 1
    for key in sorted(config):
        print(f"{(key + ':').ljust(width)} {config[key]}")
    return 0


def cmd_config_get(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    key = check_config_key(args.key)
    config = backend.config(app)
    if key not in config:
        raise NotFound(f"Config var {key} is not set on {app}.")
    print(config[key])
    return 0


def _change_config(args: argparse.Namespace, changes: dict[str, str | None], verb: str) -> int:
    backend, app = backend_for(args), app_name(args)
    release = backend.set_config(app, changes, ConsoleOutput())
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
    if args.num < 1:
        raise UsageError("-n must be 1 or more.")
    backend, app = backend_for(args), app_name(args)
    listed = backend.listing(app)
    current = next((row.release for row in listed if row.current), None)
    rows = list(reversed(listed))[: args.num]
    if args.json:
        print(json.dumps([release_json(row) for row in rows], indent=2, ensure_ascii=False))
        return 0
    suffix = f" - Current: {current.name}" if current is not None else ""
    print(f"=== {app} Releases{suffix}")
    cells = [[row.release.name, row.release.description + status_note(row.release)
              + (" (slug pruned)" if row.slug_pruned else ""),
              row.release.user, ago(row.release.created_at)] for row in rows]
    for line in columns(cells):
        print(line)
    return 0


def release_json(row: ListedRelease) -> dict[str, Any]:
    release = row.release
    return {
        "version": release.version, "description": release.description,
        "status": release.status, "user": release.user, "created_at": release.created_at,
        "updated_at": release.updated_at, "slug": release.slug, "commit": release.commit,
        "addons": list(release.addons), "failure": release.failure,
        "current": row.current, "slug_pruned": row.slug_pruned,
    }


def slug_stack_line(backend: Any, app: str, slug_id: str) -> str:
    """``Debian forky (shipway/stack:forky-1), Python 3.14.8``: what the slug was built on."""
    try:
        slug = backend.slug(slug_id, app).slug
    except ShipwayError:
        return "(slug pruned)"
    if not slug.stack:
        return "(unknown)"
    shown = describe(slug.stack)
    line = f"{shown} ({slug.stack})" if shown != slug.stack else slug.stack
    return f"{line}, {slug.runtime}" if slug.runtime else line


def cmd_releases_info(args: argparse.Namespace) -> int:
    version = version_arg(args.version)
    backend, app = backend_for(args), app_name(args)
    release = backend.release(app, version)
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
    if release.slug:
        print(f"Stack:   {slug_stack_line(backend, app, release.slug)}")
    print(f"Status:  {status}")
    return 0


def cmd_releases_output(args: argparse.Namespace) -> int:
    version = version_arg(args.version)
    backend, app = backend_for(args), app_name(args)
    if version is None:
        version = backend.release(app, None).version
    for line in backend.release_output(app, version):
        print(line.rstrip("\n"), flush=True)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    version = version_arg(args.version)
    backend, app = backend_for(args), app_name(args)
    release = backend.rollback(app, version, ConsoleOutput())
    return 0 if release.status == "succeeded" else 1


def cmd_releases_retry(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    release = backend.retry(app, ConsoleOutput())
    return 0 if release.status == "succeeded" else 1


def cmd_builds_cache_purge(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    freed = backend.purge_cache(app)
    print(f"Purging build cache for {app}... done, {freed} bytes freed")
    print("The next build starts cold.")
    return 0


# dynos --------------------------------------------------------------------------------------
STATE_WORDS = {"running": "up", "restarting": "crashed", "exited": "crashed",
               "created": "starting", "dead": "crashed", "paused": "idle"}


DYNO_OR_TYPE = re.compile(r"[a-z][a-z0-9_-]*(\.\d+)?")


def dyno_line(dyno: Dyno) -> str:
    state = STATE_WORDS.get(dyno.state, dyno.state)
    return f"{dyno.name}: {state} {short_age(dyno.started_at)} (v{dyno.release})"


def dyno_json(dyno: Dyno) -> dict[str, Any]:
    return {"name": dyno.name, "type": dyno.process_type, "state": dyno.state,
            "release": dyno.release, "started_at": dyno.started_at, "command": dyno.command}


def cmd_ps(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    found = backend.dynos(app)
    if args.json:
        print(json.dumps([dyno_json(d) for d in found], indent=2, ensure_ascii=False))
        return 0
    if not found:
        print(f"No dynos on {app}")
        return 0
    commands = backend.commands(app)
    formation = [d for d in found if d.process_type != ONEOFF_TYPE]
    for process_type in sorted({d.process_type for d in formation}):
        group = [d for d in formation if d.process_type == process_type]
        print(f"=== {process_type} ({len(group)}): {commands.get(process_type, '')}".rstrip())
        for dyno in group:
            print(dyno_line(dyno))
        print()
    oneoffs = [d for d in found if d.process_type == ONEOFF_TYPE]
    if oneoffs:
        print(f"=== {ONEOFF_TYPE}: one-off processes ({len(oneoffs)})")
        for dyno in oneoffs:
            print(f"{dyno_line(dyno)}: {dyno.command}")
        print()
    return 0


def cmd_ps_scale(args: argparse.Namespace) -> int:
    counts = parse_counts(args.pairs)
    if not counts:
        raise UsageError("Usage: shipway ps:scale web=2 worker=1 -a APP")
    backend, app = backend_for(args), app_name(args)
    formation = backend.scale(app, counts)
    now = ", ".join(f"{t} at {formation.get(t, 0)}" for t in counts)
    print(f"Scaling dynos... done, now running {now}")
    return 0


def _which(target: str | None) -> str:
    if target is None:
        return "dynos"
    return f"{target} dyno" if "." in target else f"{target} dynos"


def check_target(target: str | None) -> str | None:
    if target is not None and not DYNO_OR_TYPE.fullmatch(target):
        raise UsageError(f"{target!r} is not a dyno or process type: use e.g. web, web.1, "
                         "run.1234.")
    return target


def cmd_restart(args: argparse.Namespace) -> int:
    target = check_target(args.target)
    backend, app = backend_for(args), app_name(args)
    backend.restart(app, target)
    print(f"Restarting {_which(target)} on {app}... done")
    return 0


def cmd_ps_stop(args: argparse.Namespace) -> int:
    target = check_target(args.target)
    assert target is not None
    backend, app = backend_for(args), app_name(args)
    backend.stop(app, target)
    print(f"Stopping {_which(target)} on {app}... done")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    if args.num < 0:
        raise UsageError("-n/--num must be 0 or more.")
    backend, app = backend_for(args), app_name(args)
    for line in backend.logs(app, tail=args.num, follow=args.tail, source=args.source,
                             dyno=args.dyno):
        print(line, flush=True)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="show an app's config vars")
    add_app_option(p, required=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("config:get", help="show one config var's value")
    p.add_argument("key")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_config_get)

    p = sub.add_parser("config:set", help="set config vars (a new release, relaunched)")
    p.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_config_set)

    p = sub.add_parser("config:unset", help="remove config vars (a new release, relaunched)")
    p.add_argument("keys", nargs="+", metavar="KEY")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_config_unset)

    p = sub.add_parser("releases", help="list an app's releases, newest first")
    p.add_argument("-n", "--num", type=int, default=15)
    p.add_argument("--json", action="store_true")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_releases)

    p = sub.add_parser("releases:info", help="show one release (default: the latest)")
    p.add_argument("version", nargs="?")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_releases_info)

    p = sub.add_parser("releases:output", help="show a release's build and launch log")
    p.add_argument("version", nargs="?")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_releases_output)

    p = sub.add_parser("releases:retry",
                       help="run the latest release's release phase again (a new release)")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_releases_retry)

    p = sub.add_parser("builds:cache:purge", help="empty the build cache (next build is cold)")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_builds_cache_purge)

    p = sub.add_parser("rollback", help="roll back to an earlier release (default: the previous)")
    p.add_argument("version", nargs="?")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("ps", help="list an app's dynos")
    p.add_argument("--json", action="store_true")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("ps:scale", help="scale process types, e.g. web=2 worker=1")
    p.add_argument("pairs", nargs="+", metavar="TYPE=QUANTITY")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_ps_scale)

    for command in ("restart", "ps:restart"):
        p = sub.add_parser(command, help="restart the dynos of an app (or of one type, or one)")
        p.add_argument("target", nargs="?", metavar="DYNO|TYPE")
        add_app_option(p, required=False)
        p.set_defaults(func=cmd_restart)

    p = sub.add_parser("ps:stop", help="stop a dyno (run.N ends; formation dynos come back)")
    p.add_argument("target", metavar="DYNO|TYPE")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_ps_stop)

    p = sub.add_parser("logs", help="show (or follow) an app's log: dynos, router, state changes")
    p.add_argument("-n", "--num", type=int, default=100, help="number of lines to show")
    p.add_argument("-t", "--tail", "-f", "--follow", dest="tail", action="store_true",
                   help="keep showing new lines")
    p.add_argument("-p", "--ps", "-d", "--dyno", dest="dyno", metavar="DYNO|TYPE",
                   help="only lines of this dyno (web.1, run.1234) or type (web)")
    p.add_argument("-s", "--source", help="only lines from app, router or shipway")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_logs)
