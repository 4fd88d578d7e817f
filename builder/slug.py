"""The slug archive: ``slugs/<sha256>.tar.gz`` plus ``slugs/<sha256>.toml`` metadata.

A slug is the built ``/app`` as a gzip tarball whose bytes depend only on its content; its id
is the sha256 of those bytes. Metadata is written by this module only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from shipway.errors import Conflict, NotFound, ShipwayError
from shipway.files import fsync_dir, write_atomically
from shipway.layout import Layout

CHUNK = 1 << 20


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
    )
