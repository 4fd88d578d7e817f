"""The slug archive: ``slugs/<sha256>.tar.gz`` plus ``slugs/<sha256>.toml`` metadata.

A slug is the built ``/app`` as a gzip tarball whose bytes depend only on its content; its id
is the sha256 of those bytes. Metadata is written by this module only.

Entries are named ``app/...`` (so ``container.put_archive("/", slug)`` restores ``/app``), sorted,
owned by 1000:1000 (``app``), with modes 0755/0644, a fixed mtime, and no hard links or devices.
The gzip stream is a series of members, one per 4 MiB of tar, compressed in threads (zlib
releases the GIL) with no name and no mtime in their headers: any gzip reader sees one stream.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tarfile
import tomllib
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import tomli_w

from shipway.errors import BuildFailed, Conflict, NotFound, ShipwayError
from shipway.files import fsync_dir, write_atomically
from shipway.layout import Layout

CHUNK = 1 << 20
MEMBER_SIZE = 4 << 20
SLUG_UID = 1000
SLUG_MTIME = 315532800  # 1980-01-01, the earliest time zip files (and wheels) can hold
GZIP_LEVEL = 6


class SlugCorrupt(ShipwayError):
    """A slug's bytes no longer match its id."""

    api_id = "slug_corrupt"
    http_status = 500


@dataclass(frozen=True, slots=True)
class Slug:
    """One slug's metadata, kept in ``slugs/<id>.toml``."""

    id: str
    size: int
    app: str
    commit: str
    created_at: str
    stack: str = ""
    buildpack: str = ""
    process_types: dict[str, str] = field(default_factory=dict)
    build_duration: float = 0.0
    build_key: str = ""
    runtime: str = ""  # "Python 3.14.8": the language runtime the build installed

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def checksum(self) -> str:
        return f"SHA256:{self.id}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_slug_id(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class SlugArchive:
    """Content-addressed slugs under ``layout.slugs_dir``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.root = layout.slugs_dir

    def tarball(self, slug_id: str) -> Path:
        if not _is_slug_id(slug_id):
            raise NotFound(f"No slug {slug_id!r}.")
        return self.root / f"{slug_id}.tar.gz"

    def _meta(self, slug_id: str) -> Path:
        return self.root / f"{slug_id}.toml"

    def add(self, gz_path: Path, **meta: Any) -> Slug:
        """Move a finished gzip tarball into the archive under its sha256; returns its record."""
        slug_id = sha256_file(gz_path)
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.tarball(slug_id)
        if target.exists():
            gz_path.unlink()
        else:
            with gz_path.open("rb") as fh:
                os.fsync(fh.fileno())
            shutil.move(str(gz_path), target)
            fsync_dir(self.root)
        slug = Slug(id=slug_id, size=target.stat().st_size, **meta)
        write_atomically(self._meta(slug_id), tomli_w.dumps(_to_doc(slug)))
        return slug

    def get(self, slug_id: str) -> Slug:
        try:
            doc = tomllib.loads(self._meta(slug_id).read_text("utf-8"))
        except FileNotFoundError:
            raise NotFound(f"No slug {slug_id[:12]} in the archive (pruned?).") from None
        return _from_doc(doc)

    def exists(self, slug_id: str) -> bool:
        return _is_slug_id(slug_id) and self.tarball(slug_id).exists() and self._meta(slug_id).exists()

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name[:-5] for p in self.root.glob("*.toml") if _is_slug_id(p.name[:-5]))

    def all(self) -> Iterator[Slug]:
        for slug_id in self.ids():
            yield self.get(slug_id)

    def resolve(self, prefix: str) -> Slug:
        """Find a slug by id or unique id prefix."""
        prefix = prefix.lower().removeprefix("sha256:")
        matches = [i for i in self.ids() if i.startswith(prefix)] if prefix else []
        if not matches:
            raise NotFound(f"No slug matches {prefix!r}.")
        if len(matches) > 1:
            raise Conflict(
                f"Slug id {prefix!r} is ambiguous: it matches "
                + ", ".join(m[:12] for m in matches)
                + "."
            )
        return self.get(matches[0])

    def verify(self, slug_id: str) -> None:
        """Recompute the sha256; raises SlugCorrupt when the bytes changed."""
        path = self.tarball(slug_id)
        if not path.exists():
            raise NotFound(f"Slug {slug_id[:12]} has no tarball (pruned?).")
        actual = sha256_file(path)
        if actual != slug_id:
            raise SlugCorrupt(
                f"Slug {slug_id[:12]} is corrupt: its checksum is now {actual[:12]}."
            )

    def remove(self, slug_id: str) -> None:
        for path in (self.tarball(slug_id), self._meta(slug_id)):
            path.unlink(missing_ok=True)


def _to_doc(slug: Slug) -> dict[str, Any]:
    return {
        "id": slug.id,
        "checksum": slug.checksum,
        "size": slug.size,
        "app": slug.app,
        "commit": slug.commit,
        "created_at": slug.created_at,
        "stack": slug.stack,
        "buildpack": slug.buildpack,
        "process_types": dict(slug.process_types),
        "build_duration": slug.build_duration,
        "build_key": slug.build_key,
        "runtime": slug.runtime,
    }


def _from_doc(doc: dict[str, Any]) -> Slug:
    return Slug(
        id=doc["id"],
        size=int(doc["size"]),
        app=doc["app"],
        commit=doc.get("commit", ""),
        created_at=doc["created_at"],
        stack=doc.get("stack", ""),
        buildpack=doc.get("buildpack", ""),
        process_types=dict(doc.get("process_types", {})),
        build_duration=float(doc.get("build_duration", 0.0)),
        build_key=doc.get("build_key", ""),
        runtime=doc.get("runtime", ""),
    )


class SlugRejected(ShipwayError):
    """A slug holds an entry no dyno may get (whatever wrote it: a build, an admin, a restore)."""

    api_id = "slug_rejected"
    http_status = 422


SETID = 0o6000


def check_slug(path: Path, *, max_unpacked: int) -> int:
    """Read the whole tarball once; raises SlugRejected on the first entry a dyno must not get.

    Allowed: folders, regular files and symlinks named ``app`` or ``app/...``, without setuid
    or setgid bits, ``max_unpacked`` bytes of content in all. Refused: devices, fifos, hard
    links, absolute names and ``..``. Returns the unpacked size.
    """
    total = 0
    short = path.name[:12]
    try:
        # gzip.open, not tarfile's r|gz: that stops after the first of a slug's gzip members
        with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|", encoding="utf-8",
                                                        errors="surrogateescape") as tar:
            for member in tar:
                name = member.name
                shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:200]
                parts = name.rstrip("/").split("/")
                if name.startswith("/") or ".." in parts or parts[0] != "app":
                    raise SlugRejected(f"Slug {short} has an entry outside /app: {shown!r}.")
                if member.islnk():
                    raise SlugRejected(f"Slug {short} has a hard link: {shown!r}.")
                if not (member.isreg() or member.isdir() or member.issym()):
                    raise SlugRejected(
                        f"Slug {short} has a device, fifo or other special file: {shown!r}.")
                if member.mode & SETID:
                    raise SlugRejected(f"Slug {short} has a setuid or setgid file: {shown!r}.")
                total += member.size if member.isreg() else 0
                if total > max_unpacked:
                    raise SlugRejected(f"Slug {short} unpacks to over "
                                       f"{size_text(max_unpacked)} (slug.max_unpacked_size).")
    except (tarfile.TarError, EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        raise SlugRejected(f"Slug {short} is not a readable tarball: {exc}.") from None
    return total


class SlugTooLarge(BuildFailed):
    """The compressed slug is over ``slug.max_size``."""


def human_size(size: int) -> str:
    return f"{size / 1e6:.1f}MB" if size >= 100_000 else f"{size / 1e3:.1f}KB"


def size_text(size: int) -> str:
    """``2.0GB`` / ``500.0MB`` / ``12.3KB``: a limit as a user reads it."""
    return f"{size / 1e9:.1f}GB" if size >= 1e9 else human_size(size)


class ParallelGzipWriter:
    """A write-only file: each ``MEMBER_SIZE`` of input becomes a gzip member, compressed in a thread."""

    def __init__(self, target: IO[bytes], *, threads: int = 2, max_size: int | None = None,
                 level: int = GZIP_LEVEL) -> None:
        self.target = target
        self.level = level
        self.max_size = max_size
        self.written = 0
        self._buffer = bytearray()
        self._pending: deque[Future[bytes]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="gzip")
        self._window = max(2, threads * 2)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= MEMBER_SIZE:
            block = bytes(self._buffer[:MEMBER_SIZE])
            del self._buffer[:MEMBER_SIZE]
            self._submit(block)
        return len(data)

    def _submit(self, block: bytes) -> None:
        self._pending.append(self._pool.submit(gzip_member, block, self.level))
        while len(self._pending) >= self._window:
            self._drain_one()

    def _drain_one(self) -> None:
        member = self._pending.popleft().result()
        self.written += len(member)
        if self.max_size is not None and self.written > self.max_size:
            raise SlugTooLarge(
                f"Compiled slug size: {human_size(self.written)}+ is too large "
                f"(max is {human_size(self.max_size)})."
            )
        self.target.write(member)

    def close(self) -> None:
        try:
            if self._buffer or not self.written and not self._pending:
                self._submit(bytes(self._buffer))
                self._buffer.clear()
            while self._pending:
                self._drain_one()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def gzip_member(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """One complete gzip member: no file name, mtime 0, OS unknown (RFC 1952)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15, 8)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"
    return header + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def _normal_info(member: tarfile.TarInfo, kind: bytes, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.name.rstrip("/"))
    info.type = kind
    info.uid = info.gid = SLUG_UID
    info.uname = info.gname = "app"
    info.mtime = SLUG_MTIME
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
    elif kind == tarfile.SYMTYPE:
        info.mode = 0o777
        info.linkname = member.linkname
    else:
        info.mode = 0o755 if member.mode & 0o111 else 0o644
        info.size = size
    return info


def write_slug(tar_file: IO[bytes], target: IO[bytes], *, threads: int = 2,
               max_size: int | None = None) -> None:
    """Normalise a (seekable) tar of ``app/`` into a deterministic gzip tarball on ``target``.

    Hard links become regular files; devices, fifos and sockets are left out.
    """
    with tarfile.open(fileobj=tar_file, mode="r:", encoding="utf-8",
                      errors="surrogateescape") as source:
        members = source.getmembers()
        by_name = {m.name.rstrip("/"): m for m in members}
        gz = ParallelGzipWriter(target, threads=threads, max_size=max_size)
        try:
            with tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT,  # type: ignore[call-overload]
                              encoding="utf-8", errors="surrogateescape") as out:
                for member in sorted(members, key=lambda m: m.name.rstrip("/").encode(
                        "utf-8", "surrogateescape")):
                    _copy_member(source, out, member, by_name)
        finally:
            gz.close()


def _copy_member(source: tarfile.TarFile, out: tarfile.TarFile, member: tarfile.TarInfo,
                 by_name: dict[str, tarfile.TarInfo]) -> None:
    if member.isdir():
        out.addfile(_normal_info(member, tarfile.DIRTYPE))
    elif member.issym():
        out.addfile(_normal_info(member, tarfile.SYMTYPE))
    elif member.islnk():
        target = by_name.get(member.linkname.rstrip("/"))
        if target is None or not target.isreg():
            return
        data = source.extractfile(target)
        out.addfile(_normal_info(member, tarfile.REGTYPE, target.size), data)
    elif member.isreg():
        out.addfile(_normal_info(member, tarfile.REGTYPE, member.size), source.extractfile(member))
