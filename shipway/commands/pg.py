"""``pg:info``, ``pg:psql``, ``pg:reset`` and ``pg:backups:*`` (local or through the API).

Locally the service functions in ``shipway.addons.pgdatabase`` and ``pgbackups`` run here;
after ``shipway login`` the same operations run on the server and print the same lines.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from shipway.cli import add_app_option
from shipway.client import LocalBackend, RemoteBackend, app_name, backend_for
from shipway.errors import ShipwayError, UsageError
from shipway.files import TEMP_PREFIX, fsync_dir

CHUNK = 1 << 20


# documents: what the API answers and what both backends print from --------------------------
def backup_doc(backup: Any) -> dict[str, Any]:
    return {"id": backup.id, "database": backup.database, "addon": backup.addon,
            "size": backup.size, "sha256": backup.sha256, "started_at": backup.started_at,
            "finished_at": backup.finished_at, "kind": backup.kind, "created_by": backup.user}


def schedule_doc(schedule: Any) -> dict[str, Any]:
    return {"database": schedule.database, "at": schedule.at, "timezone": schedule.timezone,
            "keep": schedule.keep, "created_at": schedule.created_at,
            "created_by": schedule.user}


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _stamp(text: str) -> str:
    return text.replace("T", " ").replace("Z", " +0000")


def _rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{value}")


def _local(backend: Any) -> LocalBackend:
    assert isinstance(backend, LocalBackend)
    return backend


def _db_query(args: argparse.Namespace) -> dict[str, str]:
    return {"database": args.database} if getattr(args, "database", None) else {}


# pg:info, pg:psql, pg:reset -------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("GET", f"/apps/{app}/pg", params=_db_query(args))
    else:
        from shipway.addons.pgdatabase import database_info, database_of

        local = _local(backend)
        db = database_of(local.layout, app, args.database)
        doc = {"config_var": db.config_var, "info": database_info(db)}
    print(f"=== {doc['config_var']}")
    _rows(list(doc["info"].items()))
    return 0


def cmd_psql(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        body: dict[str, Any] = {"command": args.command}
        if args.command is None:
            if sys.stdin.isatty():
                raise UsageError(
                    "An interactive pg:psql needs the server's data home (--home): through "
                    "the API, give -c SQL or pipe a script on stdin.")
            body = {"script": sys.stdin.read()}
        doc = backend._json("POST", f"/apps/{app}/pg/psql", body=body, params=_db_query(args),
                            timeout=600.0)
        sys.stdout.write(doc["output"])
        return int(doc["status"])
    from shipway.addons.pgdatabase import database_of, psql_argv

    local = _local(backend)
    db = database_of(local.layout, app, args.database)
    print(f"--> Connecting to {db.addon.name}", file=sys.stderr, flush=True)
    interactive = args.command is None and sys.stdin.isatty()
    argv = psql_argv(db, command=args.command, script=args.command is None and not interactive)
    env = {**os.environ, **db.env()}
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except FileNotFoundError:
        raise ShipwayError("psql is not installed here.",
                           hint="scripts/host-setup installs postgresql-client.") from None


def cmd_reset(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("POST", f"/apps/{app}/pg/reset", params=_db_query(args),
                            body={"confirm": args.confirm or ""})
        addon = doc["addon"]
    else:
        from shipway.addons.pgdatabase import reset_database

        local = _local(backend)
        addon = reset_database(local.layout, local.settings, app=app, name=args.database,
                               confirm=args.confirm, user=local.user).addon.name
    print(f"Resetting {addon}... done")
    return 0


# pg:backups ---------------------------------------------------------------------------------
def cmd_backups(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        docs = backend._json("GET", f"/apps/{app}/pg/backups")
        schedules = backend._json("GET", f"/apps/{app}/pg/backup-schedules")
    else:
        from shipway.addons.pgbackups import get_schedule, list_backups

        local = _local(backend)
        local._check(app)
        docs = [backup_doc(b) for b in list_backups(local.layout, app)]
        found = get_schedule(local.layout, app)
        schedules = [schedule_doc(found)] if found else []
    if args.json:
        print(json.dumps({"backups": docs, "schedules": schedules}, indent=2))
        return 0
    print("=== Backups")
    if not docs:
        print(f"No backups. Capture one with shipway pg:backups:capture -a {app}")
    else:
        head = ("ID", "Created at", "Status", "Size", "Database")
        rows = [(d["id"], _stamp(d["started_at"]), f"Completed {_stamp(d['finished_at'])}",
                 human_size(d["size"]), d["database"]) for d in reversed(docs)]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for row in [head, tuple("─" * w for w in widths), *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print()
    print("=== Backup Schedules")
    if not schedules:
        print(f"No backup schedules. Add one with shipway pg:backups:schedule --at 02:00 -a {app}")
    for s in schedules:
        print(f"{s['database']}: daily at {s['at']} {s['timezone']}, keeping the last {s['keep']}")
    return 0


def _show_backup(doc: dict[str, Any]) -> None:
    _rows([("Database", doc["database"]), ("Add-on", doc["addon"]),
           ("Started at", _stamp(doc["started_at"])), ("Finished at", _stamp(doc["finished_at"])),
           ("Status", "Completed"), ("Type", doc["kind"].capitalize()),
           ("Backup Size", f"{human_size(doc['size'])} ({doc['size']} bytes)"),
           ("SHA-256", doc["sha256"])])


def cmd_capture(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    print("Starting backup... ", end="", flush=True)
    try:
        if isinstance(backend, RemoteBackend):
            doc = backend._json("POST", f"/apps/{app}/pg/backups", params=_db_query(args),
                                body={}, timeout=3600.0)
        else:
            from shipway.addons.pgbackups import capture

            local = _local(backend)
            doc = backup_doc(capture(local.layout, app=app, name=args.database,
                                     user=local.user))
    except ShipwayError:
        print("failed", flush=True)
        raise
    print("done")
    print(f"Backing up {doc['database']} to {doc['id']}... done")
    _show_backup(doc)
    return 0


def cmd_backup_info(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    doc = _find(backend, app, args.backup)
    print(f"=== Backup {doc['id']}")
    _show_backup(doc)
    return 0


def _find(backend: Any, app: str, ref: str | None) -> dict[str, Any]:
    if isinstance(backend, RemoteBackend):
        return dict(backend._json("GET", f"/apps/{app}/pg/backups/{ref or 'latest'}"))
    from shipway.addons.pgbackups import find_backup

    local = _local(backend)
    local._check(app)
    return backup_doc(find_backup(local.layout, app, ref))


def cmd_download(args: argparse.Namespace) -> int:
    """Stream the dump to a temp file next to -o, check its SHA-256, then rename it."""
    backend, app = backend_for(args), app_name(args)
    doc = _find(backend, app, args.backup)
    if isinstance(backend, RemoteBackend):
        response = backend._request("GET", f"/apps/{app}/pg/backups/{doc['id']}/download",
                                    stream=True, timeout=3600.0)
        chunks: Any = response.iter_content(CHUNK)
    else:
        from shipway.addons.pgbackups import find_backup, read_dump

        local = _local(backend)
        chunks = read_dump(local.layout, app, find_backup(local.layout, app, doc["id"]))
    target = Path(args.output or "latest.dump")
    temp = target.with_name(f"{TEMP_PREFIX}{target.name}")
    digest = hashlib.sha256()
    try:
        with temp.open("xb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                digest.update(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if digest.hexdigest() != doc["sha256"]:
            raise ShipwayError(f"The download of {doc['id']} does not match its checksum; "
                               "nothing was written.", hint="Try again.")
        os.replace(temp, target)
        fsync_dir(target.resolve().parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    print(f"Downloading {doc['id']}... done, {human_size(doc['size'])} to {target}")
    print(f"SHA-256 {doc['sha256']} (checked)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("POST", f"/apps/{app}/pg/backups/{args.backup or 'latest'}/restore",
                            params=_db_query(args), body={"confirm": args.confirm or ""},
                            timeout=3600.0)
        backup, target = doc["backup"], doc["config_var"]
    else:
        from shipway.addons.pgbackups import restore

        local = _local(backend)
        found, db = restore(local.layout, app=app, ref=args.backup, name=args.database,
                            confirm=args.confirm, user=local.user)
        backup, target = backup_doc(found), db.config_var
    print(f"Restoring {backup['id']} to {target} on {app}... done")
    print(f"{app} kept running during the restore: its dynos were not restarted.")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("DELETE", f"/apps/{app}/pg/backups/{args.backup}",
                            params={"confirm": args.confirm or ""})
    else:
        from shipway.addons.pgbackups import delete

        local = _local(backend)
        local._check(app)
        doc = backup_doc(delete(local.layout, app=app, ref=args.backup, confirm=args.confirm))
    print(f"Deleting backup {doc['id']} on {app}... done")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("PUT", f"/apps/{app}/pg/backup-schedules", params=_db_query(args),
                            body={"at": args.at, "keep": args.keep})
    else:
        from shipway.addons.pgbackups import set_schedule

        local = _local(backend)
        doc = schedule_doc(set_schedule(local.layout, app=app, name=args.database, at=args.at,
                                        keep=args.keep, user=local.user))
    print(f"Scheduling automatic daily backups of {doc['database']} at {doc['at']} "
          f"{doc['timezone']}... done")
    print(f"The last {doc['keep']} scheduled backups are kept.")
    return 0


def cmd_schedules(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        docs = backend._json("GET", f"/apps/{app}/pg/backup-schedules")
    else:
        from shipway.addons.pgbackups import get_schedule

        local = _local(backend)
        local._check(app)
        found = get_schedule(local.layout, app)
        docs = [schedule_doc(found)] if found else []
    print("=== Backup Schedules")
    if not docs:
        print(f"No backup schedules on {app}.")
    for s in docs:
        print(f"{s['database']}: daily at {s['at']} {s['timezone']}, keeping the last {s['keep']}")
    return 0


def cmd_unschedule(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("DELETE", f"/apps/{app}/pg/backup-schedules")
    else:
        from shipway.addons.pgbackups import remove_schedule

        local = _local(backend)
        local._check(app)
        doc = schedule_doc(remove_schedule(local.layout, app=app))
    print(f"Stopping automatic backups of {doc['database']} on {app}... done")
    return 0


def register(sub: Any) -> None:
    def command(name: str, func: Any, help_text: str, *, database: bool = True) -> Any:
        p = sub.add_parser(name, help=help_text)
        if database:
            p.add_argument("database", nargs="?", metavar="DATABASE",
                           help="attachment (DATABASE) or add-on name; default DATABASE")
        add_app_option(p, required=False)
        p.set_defaults(func=func)
        return p

    command("pg:info", cmd_info, "the app's PostgreSQL database: version, size, connections")
    p = command("pg:psql", cmd_psql, "psql on the app's database (interactive or -c SQL)")
    p.add_argument("-c", "--command", help="SQL to run")
    p = command("pg:reset", cmd_reset, "empty the app's database (with --confirm APP)")
    p.add_argument("--confirm")
    p = command("pg:backups", cmd_backups, "list backups and schedules", database=False)
    p.add_argument("--json", action="store_true")
    command("pg:backups:capture", cmd_capture, "take a backup (pg_dump) now")
    p = command("pg:backups:info", cmd_backup_info, "show one backup", database=False)
    p.add_argument("backup", nargs="?", metavar="BACKUP_ID")
    p = command("pg:backups:download", cmd_download, "download a backup (default: the latest)",
                database=False)
    p.add_argument("backup", nargs="?", metavar="BACKUP_ID")
    p.add_argument("-o", "--output", help="file to write (default latest.dump)")
    p = sub.add_parser("pg:backups:restore", help="restore a backup into the app's database")
    p.add_argument("backup", nargs="?", metavar="BACKUP_ID")
    p.add_argument("database", nargs="?", metavar="DATABASE")
    p.add_argument("--confirm")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_restore)
    p = command("pg:backups:delete", cmd_delete, "delete a backup", database=False)
    p.add_argument("backup", metavar="BACKUP_ID")
    p.add_argument("--confirm")
    p = command("pg:backups:schedule", cmd_schedule, "take a backup every day at --at HH:MM")
    p.add_argument("--at", required=True, help="'HH:MM' or 'HH:MM Zone/Name' (default UTC)")
    p.add_argument("--keep", type=int, default=7, help="scheduled backups kept (default 7)")
    command("pg:backups:schedules", cmd_schedules, "list backup schedules", database=False)
    command("pg:backups:unschedule", cmd_unschedule, "stop scheduled backups", database=False)
