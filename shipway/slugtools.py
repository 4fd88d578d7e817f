"""The admins' slug archive tools: list, inspect, diff, verify and prune slugs.

Used by both the ``shipway slugs*`` commands and the API. Tarballs are read as streams
(``tarfile`` mode ``r|`` over ``gzip``): nothing is unpacked to disk.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from builder.slug import Slug, SlugArchive, SlugCorrupt
from release.records import Release
from release.store import ReleaseStore
from shipway.accounts import Accounts
from shipway.errors import NotFound, UsageError
from shipway.layout import Layout
from shipway.names import shown_name

DEFAULT_KEEP = 20
# a slug built moments ago may belong to a push whose release is not written yet
DEFAULT_MIN_AGE = 3600.0
READ_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class ReleaseRef:
    """A release that names a slug (read from ``apps/NAME/releases/vN.toml``)."""

    app: str
    version: int
    current: bool


@dataclass(frozen=True, slots=True)
class SlugUse:
    """A slug of ``slugs/<id>.toml`` with the releases that reference it."""

    slug: Slug
    releases: tuple[ReleaseRef, ...]

    @property
    def current(self) -> bool:
        return any(r.current for r in self.releases)

    @property
    def apps(self) -> tuple[str, ...]:
        names = {r.app for r in self.releases} | {self.slug.app}
        return tuple(sorted(names))


@dataclass(frozen=True, slots=True)
class SlugEntry:
    """One member of a slug tarball; ``path`` is relative to ``/app``."""

    path: str
    kind: str  # "file", "dir", "symlink"
    mode: int
    size: int
    digest: str = ""
    target: str = ""

    @property
    def mode_text(self) -> str:
        return {"dir": "d", "symlink": "l"}.get(self.kind, "-") + stat.filemode(self.mode)[1:]


@dataclass(frozen=True, slots=True)
class SlugDiff:
    """What changes under ``/app`` between two slugs."""

    old: str
    new: str
    added: tuple[SlugEntry, ...]
    removed: tuple[SlugEntry, ...]
    changed: tuple[tuple[SlugEntry, SlugEntry], ...]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    slug_id: str
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """Which slugs retention keeps and which it removes (removed only when not a dry run)."""

    keep: tuple[str, ...]
    remove: tuple[Slug, ...]
    dry_run: bool

    @property
    def freed(self) -> int:
        return sum(s.size for s in self.remove)


# who uses which slug ---------------------------------------------------------------------------
def _references(layout: Layout) -> dict[str, list[ReleaseRef]]:
    store = ReleaseStore(layout)
    refs: dict[str, list[ReleaseRef]] = {}
    for app in Accounts(layout).apps():
        current = store.current(app.name)
        for release in store.list(app.name):
            if release.slug:
                is_current = current is not None and current.version == release.version
                refs.setdefault(release.slug, []).append(
                    ReleaseRef(app.name, release.version, is_current))
    return refs


def slug_uses(layout: Layout, *, app: str | None = None) -> list[SlugUse]:
    """Every slug in the archive (of ``app`` only, when given), oldest first."""
    refs = _references(layout)
    found = []
    for slug in SlugArchive(layout).all():
        use = SlugUse(slug, tuple(refs.get(slug.id, ())))
        if app is None or app in use.apps:
            found.append(use)
    return sorted(found, key=lambda u: (u.slug.created_at, u.slug.id))


def slug_use(layout: Layout, slug: Slug) -> SlugUse:
    return SlugUse(slug, tuple(_references(layout).get(slug.id, ())))


def find_slug(layout: Layout, ref: str, *, app: str | None = None) -> Slug:
    """A slug by id, unique id prefix, or ``vN`` (the slug of release N of ``app``)."""
    if ref[:1] == "v" and ref[1:].isdigit():
        if app is None:
            raise UsageError(f"{ref} names a release: give its app with -a APP.")
        release = ReleaseStore(layout).get(app, int(ref[1:]))
        if not release.slug:
            raise NotFound(f"Release {release.name} of {app} has no slug.")
        return SlugArchive(layout).get(release.slug)
    slug = SlugArchive(layout).resolve(ref)
    if app is not None and app not in slug_use(layout, slug).apps:
        raise NotFound(f"No slug matches {ref!r} in {app}.")
    return slug


def releases_of(layout: Layout, slug_id: str) -> list[Release]:
    store = ReleaseStore(layout)
    return [store.get(r.app, r.version) for r in _references(layout).get(slug_id, [])]


# reading a tarball as a stream -----------------------------------------------------------------
def _relative(name: str) -> str:
    """``app/x``, ``./x`` and ``x`` all mean ``/app/x``; the root itself is ``""``."""
    path = str(PurePosixPath(name.removeprefix("./")))
    if path in (".", "app"):
        return ""
    return path.removeprefix("app/")


@contextlib.contextmanager
def _stream(path: Path) -> Iterator[tarfile.TarFile]:
    """The tarball as a stream (``r|``): GzipFile, since slugs are many gzip members and
    tarfile's own ``r|gz`` stops after the first."""
    with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        yield tar


def _entry(member: tarfile.TarInfo, digest: str = "") -> SlugEntry:
    kind = "dir" if member.isdir() else "symlink" if member.issym() else "file"
    # names that are not UTF-8 are shown escaped: JSON and terminals take only text
    return SlugEntry(path=shown_name(_relative(member.name)), kind=kind, mode=member.mode,
                     size=member.size if kind == "file" else 0, digest=digest,
                     target=shown_name(member.linkname) if kind == "symlink" else "")


def entries(layout: Layout, slug: Slug, *, digests: bool = False) -> Iterator[SlugEntry]:
    """Every member of the slug (files, folders, symlinks) in tarball order."""
    path = SlugArchive(layout).tarball(slug.id)
    if not path.exists():
        raise NotFound(f"Slug {slug.short_id} has no tarball (pruned?).")
    with _stream(path) as tar:
        for member in tar:
            if not _relative(member.name):
                continue
            digest = ""
            if digests and member.isreg():
                digest = _hash_member(tar, member)
            yield _entry(member, digest)


def _hash_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    sha = hashlib.sha256()
    data = tar.extractfile(member)
    assert data is not None
    while chunk := data.read(READ_CHUNK):
        sha.update(chunk)
    return sha.hexdigest()


def contents(layout: Layout, slug: Slug, prefix: str = "") -> Iterator[SlugEntry]:
    """Entries at or below ``prefix`` (a path relative to /app, or ``/app/...``)."""
    wanted = _relative(prefix.removeprefix("/")) if prefix else ""
    for entry in entries(layout, slug):
        if not wanted or entry.path == wanted or entry.path.startswith(wanted + "/"):
            yield entry


def read_file(layout: Layout, slug: Slug, name: str) -> Iterator[bytes]:
    """The bytes of one regular file of the slug, in chunks."""
    wanted = _relative(name.removeprefix("/"))
    path = SlugArchive(layout).tarball(slug.id)
    if not path.exists():
        raise NotFound(f"Slug {slug.short_id} has no tarball (pruned?).")
    with _stream(path) as tar:
        for member in tar:
            if wanted not in (_relative(member.name), shown_name(_relative(member.name))):
                continue
            if not member.isreg():
                raise UsageError(f"{name} is not a regular file in slug {slug.short_id}.")
            data = tar.extractfile(member)
            assert data is not None
            while chunk := data.read(READ_CHUNK):
                yield chunk
            return
    raise NotFound(f"No file {name} in slug {slug.short_id}.")


def read_tarball(layout: Layout, slug: Slug) -> Iterator[bytes]:
    """The slug's gzip tarball as it is stored, in chunks."""
    path = SlugArchive(layout).tarball(slug.id)
    if not path.exists():
        raise NotFound(f"Slug {slug.short_id} has no tarball (pruned?).")
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            yield chunk


def diff(layout: Layout, old: Slug, new: Slug) -> SlugDiff:
    """Files added, removed and changed (by size, mode, link target or content hash)."""
    before = {e.path: e for e in entries(layout, old, digests=True)}
    after = {e.path: e for e in entries(layout, new, digests=True)}
    added = tuple(after[p] for p in sorted(after.keys() - before.keys()))
    removed = tuple(before[p] for p in sorted(before.keys() - after.keys()))
    changed = tuple(
        (before[p], after[p]) for p in sorted(before.keys() & after.keys())
        if (before[p].kind, before[p].size, before[p].digest, before[p].target, before[p].mode)
        != (after[p].kind, after[p].size, after[p].digest, after[p].target, after[p].mode)
    )
    return SlugDiff(old.id, new.id, added, removed, changed)


# checksums and retention -----------------------------------------------------------------------
def verify(layout: Layout, slug_ids: list[str] | None = None) -> list[VerifyResult]:
    """Recompute the sha256 of the given slugs (all when None)."""
    archive = SlugArchive(layout)
    results = []
    for slug_id in archive.ids() if slug_ids is None else slug_ids:
        try:
            archive.verify(slug_id)
        except (SlugCorrupt, NotFound) as exc:
            results.append(VerifyResult(slug_id, False, exc.message))
        else:
            results.append(VerifyResult(slug_id, True, "checksum ok"))
    return results


def _age(created_at: str, now: datetime) -> float:
    try:
        stamp = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (now - stamp).total_seconds()


def plan_prune(layout: Layout, *, keep: int = DEFAULT_KEEP,
               min_age: float = DEFAULT_MIN_AGE, now: datetime | None = None) -> PrunePlan:
    """Keep the slugs of each app's last ``keep`` releases, every current one, and new ones."""
    if keep < 0:
        raise UsageError("--keep must be 0 or more.")
    moment = now or datetime.now(UTC)
    store = ReleaseStore(layout)
    kept: set[str] = set()
    for app in Accounts(layout).apps():
        releases = store.list(app.name)
        recent = releases[-keep:] if keep else []
        kept.update(r.slug for r in recent if r.slug)
        kept.update(r.slug for r in releases if r.slug and r.status == "pending")
        current = store.current(app.name)
        if current is not None and current.slug:
            kept.add(current.slug)
    remove = []
    for slug in SlugArchive(layout).all():
        if slug.id in kept or _age(slug.created_at, moment) < min_age:
            kept.add(slug.id)
        else:
            remove.append(slug)
    return PrunePlan(tuple(sorted(kept)), tuple(remove), dry_run=True)


def prune(layout: Layout, *, keep: int = DEFAULT_KEEP, dry_run: bool = True,
          min_age: float = DEFAULT_MIN_AGE) -> PrunePlan:
    """Delete the slugs ``plan_prune`` does not keep (unless ``dry_run``)."""
    if dry_run:
        return plan_prune(layout, keep=keep, min_age=min_age)
    store = ReleaseStore(layout)
    with contextlib.ExitStack() as locks:
        # every app's release lock (in name order): no release can pick a slug mid-prune
        for app in Accounts(layout).apps():
            locks.enter_context(store.lock(app.name))
        plan = plan_prune(layout, keep=keep, min_age=min_age)
        archive = SlugArchive(layout)
        for slug in plan.remove:
            archive.remove(slug.id)
    return PrunePlan(plan.keep, plan.remove, dry_run=False)
