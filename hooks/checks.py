"""The checks ``git receive-pack`` makes with ``receive.fsckObjects=true`` that dulwich does not.

``check_connected`` walks every object reachable from a pushed tip that is new (in the
quarantine), checks it as ``git fsck`` would, and proves every object it names is present.
Objects already in the repository were checked when they arrived, so the walk stops there.
"""

from __future__ import annotations

import stat
import unicodedata
from collections.abc import Callable

from dulwich.errors import ObjectFormatException
from dulwich.object_store import BaseObjectStore
from dulwich.objects import S_IFGITLINK, Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.refs import Ref, check_ref_format

ALLOWED_MODES = frozenset(
    {stat.S_IFREG | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o664, stat.S_IFLNK,
     stat.S_IFDIR, S_IFGITLINK}
)
# Code points HFS+ ignores when comparing names (git's is_hfs_dotgit list).
HFS_IGNORABLE = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)
PROTECTED = ("git", "gitmodules", "gitattributes", "gitignore", "mailmap")


class BadObject(Exception):
    """A pushed object that git fsck would reject; the message is git's kind of reason."""


class MissingObject(Exception):
    """A pushed ref or object names an object that is not there."""


def _hfs_fold(name: str) -> str:
    return "".join(c for c in name if c not in HFS_IGNORABLE).casefold()


def _ntfs_fold(name: str) -> str:
    # NTFS drops trailing dots and spaces and ignores alternate data streams.
    name = name.split(":", 1)[0]
    return name.rstrip(". ").casefold()


def is_protected_name(raw: bytes, protected: str) -> bool:
    """True when ``raw`` names ``.<protected>`` on a case-, HFS- or NTFS-folding filesystem."""
    name = raw.decode("utf-8", "surrogateescape")
    target = "." + protected
    if name.casefold() == target:
        return True
    if _hfs_fold(name) == target or _ntfs_fold(name) == target:
        return True
    # NTFS 8.3 short names: GIT~1, GITMOD~1, ...
    short = _ntfs_fold(name)
    return short in (protected[:6] + "~1", "git~1") and protected in ("git", "gitmodules")


def check_tree_entry_name(name: bytes) -> None:
    if name in (b"", b".", b".."):
        raise BadObject(f"tree has a {'empty' if not name else repr(name.decode())} path component")
    if b"/" in name:
        raise BadObject(f"tree entry {name!r} contains '/'")
    if b"\0" in name:
        raise BadObject("tree entry contains a NUL byte")
    if b"\\" in name and name.replace(b"\\", b"/").split(b"/")[0] in (b"..", b".git"):
        raise BadObject(f"tree entry {name!r} has a backslash path")
    if is_protected_name(name, "git"):
        raise BadObject(f"tree contains a {name.decode('utf-8', 'replace')!r} entry")
    try:
        nfc = unicodedata.normalize("NFC", name.decode("utf-8"))
    except UnicodeDecodeError:
        return
    if nfc.casefold() == ".git":
        raise BadObject(f"tree contains a {nfc!r} entry")


def check_tree(tree: Tree) -> None:
    try:
        tree.check()
    except ObjectFormatException as exc:
        if "invalid name" not in str(exc):
            raise BadObject(str(exc)) from exc
    last: bytes | None = None
    for entry in tree.iteritems():
        name, mode = entry.path, entry.mode
        assert name is not None and mode is not None
        check_tree_entry_name(name)
        if mode not in ALLOWED_MODES:
            raise BadObject(f"tree entry {name!r} has bad mode {mode:o}")
        if stat.S_ISLNK(mode):
            for special in ("gitmodules", "gitattributes", "gitignore", "mailmap"):
                if is_protected_name(name, special):
                    raise BadObject(f".{special} is a symbolic link")
        if name == last:
            raise BadObject(f"tree has duplicate entry {name!r}")
        last = name


def check_object(obj: ShaFile) -> None:
    if isinstance(obj, Tree):
        check_tree(obj)
        return
    try:
        obj.check()
    except ObjectFormatException as exc:
        raise BadObject(str(exc)) from exc


def check_connected(
    tips: list[bytes],
    *,
    is_new: Callable[[bytes], bool],
    objects: BaseObjectStore,
) -> None:
    """Check every new object reachable from ``tips``; raise BadObject or MissingObject.

    Blobs named by trees are only proven present, never read: a blob has no format to check,
    and reading one costs its whole size in memory (index-pack --strict checked its type).
    """
    seen: set[bytes] = set()
    pending: list[tuple[bytes, bool]] = [(tip, False) for tip in tips]
    while pending:
        sha, blob = pending.pop()
        if sha in seen:
            continue
        seen.add(sha)
        oid = ObjectID(sha)
        if oid not in objects:
            raise MissingObject(f"missing object {sha.decode()}")
        if blob or not is_new(sha):
            continue
        obj = objects[oid]
        if isinstance(obj, Blob):
            continue
        check_object(obj)
        if isinstance(obj, Commit):
            pending.append((obj.tree, False))
            pending.extend((parent, False) for parent in obj.parents)
        elif isinstance(obj, Tree):
            for entry in obj.iteritems():
                if entry.mode != S_IFGITLINK and entry.sha is not None:
                    pending.append((entry.sha, not stat.S_ISDIR(entry.mode or 0)))
        elif isinstance(obj, Tag):
            pending.append((obj.object[1], False))


def valid_ref_name(ref: bytes) -> bool:
    return ref.startswith(b"refs/") and check_ref_format(Ref(ref))
