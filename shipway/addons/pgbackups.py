"""``pg:backups``: ``pg_dump`` archives of an app's database kept under the data home.

::

    apps/APP/backups/b001.dump       pg_dump --format=custom, written here (temp, fsync, rename)
    apps/APP/backups/backups.toml    the Backup records and the next number (b001, b002, ...)
    apps/APP/backups/schedule.toml   the daily Schedule, if any

A backup that fails leaves no file and no record and says why (``pg_dump``'s own last line).
Numbers are never reused, as on Heroku. Restores run ``pg_restore --clean`` into the live
database in one transaction: the app keeps running and sees either the old or the restored data.
The ``BackupScheduler`` thread of ``shipway serve`` takes the scheduled ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

from shipway.addons.pgdatabase import Database, database_of
from shipway.addons.records import AddonError
from shipway.errors import NotFound, UsageError
from shipway.files import TEMP_PREFIX, clean_temp_files, fsync_dir, locked, write_atomically
from shipway.layout import Layout
from shipway.log import get as get_log

CHUNK = 1 << 20
DEFAULT_KEEP = 7
TICK_SECONDS = 30.0
RETRY = timedelta(minutes=15)
DUMP_TIMEOUT = 3600.0
BACKUP_ID = re.compile(r"^[bB](\d{3,})$")
AT = re.compile(r"^(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?:\s+(?P<tz>\S+))?$")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Backup:
    """One finished backup (``apps/APP/backups/backups.toml``); its dump is ``ID.dump``."""

    id: str            # b001
    database: str      # attachment, e.g. DATABASE
    addon: str         # postgresql-shiny-4821
    size: int
    sha256: str
    started_at: str
    finished_at: str
    kind: str          # manual | scheduled
    user: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """A daily backup (``apps/APP/backups/schedule.toml``) at ``at`` in ``timezone``."""

    database: str
    at: str            # HH:MM
    timezone: str
    keep: int
    created_at: str
    user: str


def backup_id(number: int) -> str:
    return f"b{number:03d}"


def _number(backup_id_text: str) -> int:
    found = BACKUP_ID.match(backup_id_text)
    return int(found.group(1)) if found else 0


# the store --------------------------------------------------------------------------------
def _dir(layout: Layout, app: str) -> Path:
    return layout.backups_dir(app)


def _lock(layout: Layout, app: str) -> Any:
    return locked(_dir(layout, app) / ".lock")


def dump_path(layout: Layout, app: str, backup: Backup) -> Path:
    return _dir(layout, app) / f"{backup.id}.dump"


def _read(layout: Layout, app: str) -> tuple[int, list[Backup]]:
    path = _dir(layout, app) / "backups.toml"
    if not path.exists():
        return 1, []
    doc = tomllib.loads(path.read_text("utf-8"))
    backups = [Backup(**{k: b[k] for k in Backup.__dataclass_fields__}) for b in
               doc.get("backups", [])]
    return int(doc.get("next_number", 1)), backups


def _write(layout: Layout, app: str, next_number: int, backups: list[Backup]) -> None:
    doc = {"next_number": next_number, "backups": [
        {k: getattr(b, k) for k in Backup.__dataclass_fields__} for b in backups]}
    write_atomically(_dir(layout, app) / "backups.toml", tomli_w.dumps(doc), mode=0o600)


def list_backups(layout: Layout, app: str) -> list[Backup]:
    layout.app_file(app)  # validates the name
    return _read(layout, app)[1]


def find_backup(layout: Layout, app: str, ref: str | None) -> Backup:
    """By id (``b001``), or the latest one when ``ref`` is empty or ``latest``."""
    backups = list_backups(layout, app)
    if not ref or ref == "latest":
        if not backups:
            raise NotFound(f"No backups of {app}.",
                           hint=f"Capture one with shipway pg:backups:capture -a {app}.")
        return backups[-1]
    number = _number(ref)
    for backup in backups:
        if number and _number(backup.id) == number:
            return backup
    raise NotFound(f"Couldn't find backup {ref} of {app}.")


def read_dump(layout: Layout, app: str, backup: Backup) -> Iterator[bytes]:
    """The dump's bytes, streamed."""
    with dump_path(layout, app, backup).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# capture, restore, delete -------------------------------------------------------------------
def capture(layout: Layout, *, app: str, name: str | None, user: str, kind: str = "manual",
            clock: Clock = utcnow) -> Backup:
    """``pg_dump`` into a temp file (hashing as it streams), then fsync, rename and record."""
    db = database_of(layout, app, name)
    folder = _dir(layout, app)
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(layout, app):
        clean_temp_files(folder)
        number, backups = _read(layout, app)
        ident = backup_id(number)
        started = clock()
        size, sha = _dump(db, folder / f"{TEMP_PREFIX}{ident}.dump", folder / f"{ident}.dump")
        backup = Backup(id=ident, database=db.addon.attachment, addon=db.addon.name, size=size,
                        sha256=sha, started_at=iso(started), finished_at=iso(clock()), kind=kind,
                        user=user)
        try:
            _write(layout, app, number + 1, [*backups, backup])
        except BaseException:
            (folder / f"{ident}.dump").unlink(missing_ok=True)
            raise
    get_log(app=app, user=user, addon=db.addon.name).info(
        "pg.backup_captured", backup=ident, size=size, kind=kind)
    return backup


def _dump(db: Database, temp: Path, final: Path) -> tuple[int, str]:
    argv = ["pg_dump", "--format=custom", "--no-password", "--dbname", db.url]
    digest = hashlib.sha256()
    size = 0
    try:
        with open(temp, "xb") as out:
            os.chmod(temp, 0o600)
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=_env(db))
            except FileNotFoundError:
                raise AddonError("Backup failed: pg_dump is not installed on the server "
                                 "(scripts/host-setup installs postgresql-client).") from None
            assert proc.stdout is not None and proc.stderr is not None
            with proc:
                while chunk := proc.stdout.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                errors = proc.stderr.read().decode("utf-8", "replace")
                code = proc.wait(timeout=DUMP_TIMEOUT)
            if code != 0:
                reason = _last_line(errors) or f"pg_dump exited with status {code}"
                raise AddonError(f"Backup failed: {reason}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
        fsync_dir(final.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def restore(layout: Layout, *, app: str, ref: str | None, name: str | None,
            confirm: str | None, user: str) -> tuple[Backup, Database]:
    """``pg_restore --clean`` of a backup into the app's live database, in one transaction."""
    backup = find_backup(layout, app, ref)
    db = database_of(layout, app, name)
    if confirm != app:
        raise UsageError(f"This overwrites all data in {db.addon.name} ({db.config_var}) with "
                         f"{backup.id}. To proceed, pass --confirm {app}.")
    with _lock(layout, app):
        path = dump_path(layout, app, backup)
        if file_sha256(path) != backup.sha256:
            raise AddonError(f"{backup.id} does not match its checksum: the file is damaged; "
                             "nothing was restored.")
        argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-acl",
                "--single-transaction", "--exit-on-error", "--no-password", "--dbname", db.url,
                str(path)]
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              env=_env(db), timeout=DUMP_TIMEOUT, check=False)
        if done.returncode != 0:
            raise AddonError(f"Restore failed, nothing was changed: "
                             f"{_last_line(done.stderr) or f'status {done.returncode}'}")
    get_log(app=app, user=user, addon=db.addon.name).info("pg.backup_restored", backup=backup.id)
    return backup, db


def delete(layout: Layout, *, app: str, ref: str, confirm: str | None) -> Backup:
    backup = find_backup(layout, app, ref)
    if confirm != app:
        raise UsageError(f"This deletes {backup.id} for good. To proceed, pass --confirm {app}.")
    with _lock(layout, app):
        number, backups = _read(layout, app)
        _write(layout, app, number, [b for b in backups if b.id != backup.id])
        dump_path(layout, app, backup).unlink(missing_ok=True)
    return backup


def _env(db: Database) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
    return {**keep, **db.env()}


def _last_line(text: str) -> str:
    """The line that says why: the first ``error:`` line of pg_dump/pg_restore, else the last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    chosen = next((line for line in lines if "error:" in line), lines[-1] if lines else "")
    return " ".join(chosen.split())[:300]


# schedules ----------------------------------------------------------------------------------
def _schedule_path(layout: Layout, app: str) -> Path:
    return _dir(layout, app) / "schedule.toml"


def parse_at(text: str) -> tuple[str, str]:
    """``02:00`` or ``02:00 Europe/Paris`` -> (``02:00``, timezone); UTC when none is given."""
    found = AT.match(text.strip())
    if not found:
        raise UsageError(f"Invalid --at {text!r}: use HH:MM, optionally with a time zone, "
                         "e.g. '02:00 Europe/Paris'.")
    zone = found.group("tz") or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"Unknown time zone {zone!r}: use a name like Europe/Paris.") from None
    return f"{int(found.group('hour')):02d}:{found.group('minute')}", zone


def set_schedule(layout: Layout, *, app: str, name: str | None, at: str,
                 keep: int = DEFAULT_KEEP, user: str, clock: Clock = utcnow) -> Schedule:
    db = database_of(layout, app, name)
    if keep < 1:
        raise UsageError("--keep must be at least 1.")
    hhmm, zone = parse_at(at)
    schedule = Schedule(database=db.addon.attachment, at=hhmm, timezone=zone, keep=keep,
                        created_at=iso(clock()), user=user)
    doc = {k: getattr(schedule, k) for k in Schedule.__dataclass_fields__}
    with _lock(layout, app):
        write_atomically(_schedule_path(layout, app), tomli_w.dumps(doc))
    return schedule


def get_schedule(layout: Layout, app: str) -> Schedule | None:
    path = _schedule_path(layout, app)
    if not path.exists():
        return None
    doc = tomllib.loads(path.read_text("utf-8"))
    return Schedule(**{k: doc[k] for k in Schedule.__dataclass_fields__})


def remove_schedule(layout: Layout, *, app: str) -> Schedule:
    schedule = get_schedule(layout, app)
    if schedule is None:
        raise NotFound(f"{app} has no backup schedule.")
    with _lock(layout, app):
        _schedule_path(layout, app).unlink(missing_ok=True)
        fsync_dir(_dir(layout, app))
    return schedule


def latest_slot(schedule: Schedule, now: datetime) -> datetime:
    """The most recent moment, at or before ``now``, the schedule names (in UTC)."""
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    hour, minute = (int(x) for x in schedule.at.split(":"))
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot > local:
        slot = (local - timedelta(days=1)).replace(hour=hour, minute=minute, second=0,
                                                   microsecond=0)
    return slot.astimezone(UTC)


def due(schedule: Schedule, backups: list[Backup], now: datetime) -> bool:
    """True when a slot has passed since the schedule was made and the last scheduled backup.

    A server that was down at the hour takes the missed backup once when it is back.
    """
    slot = latest_slot(schedule, now)
    since = [parse_iso(schedule.created_at)]
    since += [parse_iso(b.started_at) for b in backups if b.kind == "scheduled"]
    return slot > max(since)


def prune_scheduled(layout: Layout, app: str, keep: int) -> list[Backup]:
    """Delete scheduled backups beyond the newest ``keep`` (manual ones are left alone)."""
    with _lock(layout, app):
        number, backups = _read(layout, app)
        scheduled = [b for b in backups if b.kind == "scheduled"]
        gone = scheduled[:-keep] if len(scheduled) > keep else []
        _write(layout, app, number, [b for b in backups if b not in gone])
        for backup in gone:
            dump_path(layout, app, backup).unlink(missing_ok=True)
    return gone


def run_due_backups(layout: Layout, *, now: datetime,
                    skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """Capture every due scheduled backup and prune; answers (app, backup id or error)."""
    done: list[tuple[str, str]] = []
    if not layout.apps_dir.is_dir():
        return done
    for app_dir in sorted(layout.apps_dir.iterdir()):
        if not (app_dir / "app.toml").exists():
            continue
        app = app_dir.name
        if app in skip:
            continue
        schedule = get_schedule(layout, app)
        if schedule is None or not due(schedule, list_backups(layout, app), now):
            continue
        try:
            backup = capture(layout, app=app, name=schedule.database, user="scheduler",
                             kind="scheduled", clock=lambda: now)
            prune_scheduled(layout, app, schedule.keep)
            done.append((app, backup.id))
        except (AddonError, NotFound) as exc:
            get_log(app=app).error("pg.scheduled_backup_failed", error=exc.message)
            done.append((app, f"failed: {exc.message}"))
    return done


class BackupScheduler:
    """The thread of ``shipway serve`` that takes scheduled backups (checked every 30 s)."""

    def __init__(self, layout: Layout, *, clock: Clock = utcnow,
                 interval: float = TICK_SECONDS) -> None:
        self.layout = layout
        self.clock = clock
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipway-pg-backups",
                                        daemon=True)

    def start(self) -> BackupScheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        failed: dict[str, datetime] = {}  # a failing app is retried after RETRY, not every tick
        while not self._stop.wait(self.interval):
            now = self.clock()
            skip = frozenset(app for app, at in failed.items() if now - at < RETRY)
            try:
                for app, outcome in run_due_backups(self.layout, now=now, skip=skip):
                    if outcome.startswith("failed"):
                        failed[app] = now
                    else:
                        failed.pop(app, None)
            except Exception:  # noqa: BLE001 - keep scheduling; the log has the trace
                get_log().exception("pg.scheduler_crashed")
