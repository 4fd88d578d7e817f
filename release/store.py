"""Release records on disk: ``apps/NAME/releases/vNNNNNNN.toml``, one TOML file each.

Version numbers come from a per-app ``flock`` held from "read latest" to "write new", so
concurrent writers never leave a gap or a duplicate; files are written atomically.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import tomli_w

from release.records import Release, Status
from shipway.accounts import now_iso
from shipway.errors import Conflict, DiskFull, NotFound
from shipway.files import (
    TEMP_PREFIX,
    clean_temp_files,
    is_disk_full,
    locked,
    private_dir,
    reserve_space,
    write_atomically,
)
from shipway.layout import Layout

FILE_DIGITS = 7
# a record holds every config value: readable by Shipway's user only
RECORD_MODE = 0o600
# a pending release holds this much disk (allocated with its record, freed when it finishes),
# so that a disk filling up while it launches cannot leave it pending: its log lines, route
# and final record have room
RESERVE_BYTES = 256 * 1024


def release_file_name(version: int) -> str:
    return f"v{version:0{FILE_DIGITS}d}.toml"


def _to_doc(release: Release) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": release.version,
        "description": release.description,
        "status": release.status,
        "user": release.user,
        "created_at": release.created_at,
        "updated_at": release.updated_at,
        "config": dict(release.config),
        "addons": list(release.addons),
        "launched": release.launched,
    }
    for key in ("slug", "commit", "commit_description", "output", "failure"):
        value = getattr(release, key)
        if value:
            doc[key] = value
    return doc


def _from_doc(app: str, doc: dict[str, Any]) -> Release:
    return Release(
        app=app,
        version=int(doc["version"]),
        description=doc["description"],
        status=doc["status"],
        user=doc["user"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        slug=doc.get("slug", ""),
        commit=doc.get("commit", ""),
        commit_description=doc.get("commit_description", ""),
        config={str(k): str(v) for k, v in doc.get("config", {}).items()},
        addons=tuple(doc.get("addons", [])),
        output=doc.get("output", ""),
        failure=doc.get("failure", ""),
        launched=bool(doc.get("launched", False)),
    )


class ReleaseStore:
    """Creates, reads and finishes the release records of every app under one data home."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def _dir(self, app: str) -> Path:
        return self.layout.releases_dir(app)

    def _path(self, app: str, version: int) -> Path:
        return self._dir(app) / release_file_name(version)

    def _reserve(self, app: str, version: int) -> Path:
        return self._dir(app) / f"{TEMP_PREFIX}reserve-v{version}"

    @contextlib.contextmanager
    def lock(self, app: str) -> Iterator[None]:
        """The per-app lock that serializes every mutation of the app's releases."""
        with locked(self._dir(app) / ".lock"):
            yield

    def versions(self, app: str) -> list[int]:
        folder = self._dir(app)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.glob("v*.toml"):
            digits = path.stem[1:]
            if digits.isdigit():
                found.append(int(digits))
        return sorted(found)

    def get(self, app: str, version: int) -> Release:
        path = self._path(app, version)
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            raise NotFound(f"Release v{version} not found for {app}.") from None
        return _from_doc(app, tomllib.loads(text))

    def list(self, app: str) -> list[Release]:
        """All releases, oldest first."""
        return [self.get(app, v) for v in self.versions(app)]

    def latest(self, app: str) -> Release | None:
        versions = self.versions(app)
        return self.get(app, versions[-1]) if versions else None

    def current(self, app: str) -> Release | None:
        """The newest succeeded release that has been launched (or needs no launch)."""
        for version in reversed(self.versions(app)):
            release = self.get(app, version)
            if release.status == "succeeded" and (release.launched or not release.slug):
                return release
        return None

    def create(
        self,
        app: str,
        *,
        description: str,
        user: str,
        status: Status = "pending",
        slug: str = "",
        commit: str = "",
        commit_description: str = "",
        config: dict[str, str] | None = None,
        addons: tuple[str, ...] = (),
        output: str = "",
        launched: bool = False,
        already_locked: bool = False,
    ) -> Release:
        """Write the next version. Pass ``already_locked`` when the caller holds ``lock(app)``."""
        ctx = contextlib.nullcontext() if already_locked else self.lock(app)
        with ctx:
            clean_temp_files(self._dir(app))
            version = self.next_version(app)
            stamp = now_iso()
            release = Release(
                app=app, version=version, description=description, status=status,
                user=user, created_at=stamp, updated_at=stamp, slug=slug, commit=commit,
                commit_description=commit_description, config=dict(config or {}),
                addons=tuple(addons), output=output, launched=launched,
            )
            private_dir(self._dir(app))
            path, reserve = self._path(app, version), self._reserve(app, version)
            try:
                if status == "pending":
                    reserve_space(reserve, RESERVE_BYTES)
                write_atomically(path, tomli_w.dumps(_to_doc(release)), mode=RECORD_MODE)
            except OSError as exc:
                reserve.unlink(missing_ok=True)
                if is_disk_full(exc):
                    raise DiskFull(f"writing release v{version}") from None
                raise
            return release

    def discard(self, release: Release) -> None:
        """Remove a pending release nobody will launch (its push did not move the ref)."""
        current = self.get(release.app, release.version)
        if current.status != "pending":
            raise Conflict(f"Release v{release.version} is already {current.status}.")
        self._path(release.app, release.version).unlink()
        self._reserve(release.app, release.version).unlink(missing_ok=True)

    def next_version(self, app: str) -> int:
        """The version ``create`` will write next; only meaningful under ``lock(app)``."""
        versions = self.versions(app)
        return versions[-1] + 1 if versions else 1

    def finish(self, release: Release, status: Status, *, failure: str = "",
               launched: bool = False) -> Release:
        """Move a pending release to succeeded or failed (the only rewrite allowed)."""
        if status == "pending":
            raise Conflict("A release can only be finished as succeeded or failed.")
        current = self.get(release.app, release.version)
        if current.status != "pending":
            raise Conflict(f"Release v{release.version} is already {current.status}.")
        # the failure reason is one line: it is shown in `releases` and `releases:info`
        reason = " ".join(failure.split())
        done = replace(current, status=status, failure=reason, launched=launched,
                       updated_at=now_iso())
        # the room held since the release was written: the final record always fits
        self._reserve(release.app, release.version).unlink(missing_ok=True)
        write_atomically(self._path(release.app, release.version), tomli_w.dumps(_to_doc(done)),
                         mode=RECORD_MODE)
        return done
