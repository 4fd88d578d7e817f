"""The source tree of a pushed commit, streamed from the git object store as a tar.

Nothing is checked out on the host: blobs go straight from dulwich into tar entries (names
``app/...``) that Docker unpacks inside the build container. Symlinks stay symlink entries,
executable bits are kept, gitlinks (submodules) are skipped, ``.slugignore`` patterns are dropped.
"""

from __future__ import annotations

import fnmatch
import io
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from dulwich.objects import Blob, Commit, Tree

from shipway.errors import BuildFailed

ROOT = "app"
APP_UID = 1000
FIXED_MTIME = 315532800  # 1980-01-01: zip-safe, and independent of when the push happened


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One path of the tree (relative, ``/``-separated bytes) with its git mode and blob."""

    path: bytes
    mode: int
    sha: bytes


def commit_tree(objects: Any, commit: str) -> Tree:
    try:
        obj = objects[commit.encode("ascii")]
    except KeyError:
        raise BuildFailed(f"Commit {commit[:7]} is not in the pushed objects.") from None
    if not isinstance(obj, Commit):
        raise BuildFailed(f"{commit[:7]} is not a commit.")
    tree = objects[obj.tree]
    assert isinstance(tree, Tree)
    return tree


def walk_tree(objects: Any, tree: Tree, prefix: bytes = b"") -> Iterator[SourceEntry]:
    """Every entry under ``tree``, parents before children; gitlinks are left out."""
    for item in tree.iteritems():
        path = prefix + item.path
        if stat.S_ISDIR(item.mode):
            yield SourceEntry(path, item.mode, item.sha)
            sub = objects[item.sha]
            assert isinstance(sub, Tree)
            yield from walk_tree(objects, sub, path + b"/")
        elif item.mode == 0o160000:  # submodule: its commit is not in this repository
            continue
        else:
            yield SourceEntry(path, item.mode, item.sha)


def read_root_file(objects: Any, tree: Tree, name: str) -> bytes | None:
    """The bytes of a regular file at the tree's root, or None."""
    try:
        mode, sha = tree[name.encode()]
    except KeyError:
        return None
    if not stat.S_ISREG(mode):
        return None
    blob = objects[sha]
    assert isinstance(blob, Blob)
    return bytes(blob.as_raw_string())


def slugignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Heroku's .slugignore: like .gitignore without negation; a matched folder drops its contents."""
    parts = path.split("/")
    for pattern in patterns:
        anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
        body = pattern.strip("/")
        for depth in range(1, len(parts) + 1):
            head = "/".join(parts[:depth])
            if anchored:
                if fnmatch.fnmatchcase(head, body):
                    return True
            elif fnmatch.fnmatchcase(parts[depth - 1], body):
                return True
    return False


def _name(path: bytes) -> str:
    return ROOT + "/" + path.decode("utf-8", "surrogateescape")


def write_source_tar(objects: Any, commit: str, fileobj: IO[bytes]) -> int:
    """Write the commit's tree as a tar to ``fileobj``; returns the number of entries."""
    tree = commit_tree(objects, commit)
    ignore = read_root_file(objects, tree, ".slugignore")
    patterns = slugignore_patterns(ignore.decode("utf-8", "replace")) if ignore else []
    count = 0
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        tar.addfile(_info(ROOT, tarfile.DIRTYPE, 0o755))
        for entry in walk_tree(objects, tree):
            rel = entry.path.decode("utf-8", "surrogateescape")
            if rel == ".slugignore" or (patterns and is_ignored(rel, patterns)):
                continue
            count += 1
            if stat.S_ISDIR(entry.mode):
                tar.addfile(_info(_name(entry.path), tarfile.DIRTYPE, 0o755))
                continue
            blob = objects[entry.sha]
            assert isinstance(blob, Blob)
            data = blob.as_raw_string()
            if stat.S_ISLNK(entry.mode):
                info = _info(_name(entry.path), tarfile.SYMTYPE, 0o777)
                info.linkname = data.decode("utf-8", "surrogateescape")
                tar.addfile(info)
            else:
                info = _info(_name(entry.path), tarfile.REGTYPE,
                             0o755 if entry.mode & 0o111 else 0o644)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return count


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = APP_UID
    info.uname = info.gname = "app"
    info.mtime = FIXED_MTIME
    return info
