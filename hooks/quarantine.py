"""A quarantine object directory: a push's objects, invisible to the repository until accepted.

Like git's ``tmp_objdir``: ``objects/incoming-XXXX/`` with the repository's object store as an
alternate, so thin packs resolve and stages can read old and new objects alike.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from dulwich.object_store import DiskObjectStore
from dulwich.objects import ObjectID

from shipway.files import fsync_dir

INCOMING_PREFIX = "incoming-"


class Quarantine:
    def __init__(self, repo_objects: Path) -> None:
        self.repo_objects = repo_objects
        self.path = Path(tempfile.mkdtemp(prefix=INCOMING_PREFIX, dir=repo_objects))
        DiskObjectStore.init(self.path)
        self.store = DiskObjectStore(str(self.path), alternates=[str(repo_objects)])
        self._own = DiskObjectStore(str(self.path))

    def holds(self, sha: bytes) -> bool:
        """True for objects that arrived with this push (not already in the repository)."""
        return ObjectID(sha) in self._own

    def migrate(self) -> None:
        """Move the received packs into the repository (pack first, then its index)."""
        pack_dir = self.path / "pack"
        target = self.repo_objects / "pack"
        target.mkdir(exist_ok=True)
        for pack in sorted(pack_dir.glob("*.pack")):
            idx = pack.with_suffix(".idx")
            if not idx.exists():
                continue
            os.replace(pack, target / pack.name)
            os.replace(idx, target / idx.name)
        fsync_dir(target)

    def discard(self) -> None:
        self.store.close()
        self._own.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.discard()


def clean_stale_quarantines(repo_objects: Path) -> None:
    """Remove quarantines a crashed server left behind."""
    for leftover in repo_objects.glob(INCOMING_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
