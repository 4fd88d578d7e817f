"""The source tar: straight from git objects, symlinks kept, .slugignore honoured."""

from __future__ import annotations

import io
import tarfile

import pytest
from dulwich.object_store import MemoryObjectStore
from dulwich.objects import Blob, Commit, Tree

from builder.source import is_ignored, write_source_tar
from shipway.errors import BuildFailed


def store_with(files: dict[bytes, tuple[int, bytes]]) -> tuple[MemoryObjectStore, str]:
    """A commit whose tree holds ``path -> (git mode, data)`` (one level of folders)."""
    store = MemoryObjectStore()
    trees: dict[bytes, Tree] = {b"": Tree()}
    for path, (mode, data) in files.items():
        folder, _, name = path.rpartition(b"/")
        if mode == 0o160000:
            trees.setdefault(folder, Tree()).add(name, mode, data)
            continue
        blob = Blob.from_string(data)
        store.add_object(blob)
        trees.setdefault(folder, Tree()).add(name, mode, blob.id)
    for folder, tree in trees.items():
        if folder:
            store.add_object(tree)
            trees[b""].add(folder, 0o040000, tree.id)
    store.add_object(trees[b""])
    commit = Commit()
    commit.tree = trees[b""].id
    commit.author = commit.committer = b"Dev <dev@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"deploy"
    store.add_object(commit)
    return store, commit.id.decode()


def entries(store: MemoryObjectStore, sha: str) -> dict[str, tarfile.TarInfo]:
    buffer = io.BytesIO()
    write_source_tar(store, sha, buffer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, encoding="utf-8", errors="surrogateescape") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_modes_symlinks_and_gitlinks() -> None:
    store, sha = store_with({
        b"run.sh": (0o100755, b"#!/bin/sh\n"), b"README": (0o100644, b"hi"),
        b"escape": (0o120000, b"../../etc/passwd"), b"lib/sub": (0o160000, b"a" * 40),
        b"lib/x.py": (0o100644, b""), b"caf\xe9": (0o100644, b"bytes"),
    })
    found = entries(store, sha)
    assert found["app/run.sh"].mode == 0o755 and found["app/README"].mode == 0o644
    assert found["app/escape"].issym() and found["app/escape"].linkname == "../../etc/passwd"
    assert "app/lib/sub" not in found and found["app/lib"].isdir()
    assert "app/caf\udce9" in found
    assert {m.uid for m in found.values()} == {1000}


def test_slugignore_is_applied_and_itself_dropped() -> None:
    store, sha = store_with({
        b".slugignore": (0o100644, b"# big files\n*.psd\n/tests\n"),
        b"logo.psd": (0o100644, b"x"), b"tests/t.py": (0o100644, b"x"),
        b"app.py": (0o100644, b"x"),
    })
    assert sorted(entries(store, sha)) == ["app", "app/app.py"]


@pytest.mark.parametrize(("path", "pattern", "ignored"), [
    ("a/b/c.log", "*.log", True), ("docs/x", "/docs", True), ("src/docs/x", "/docs", False),
    ("src/docs/x", "docs", True), ("a/b", "a/b", True), ("x/a/b", "a/b", False),
    ("keep.txt", "*.log", False),
])
def test_ignore_patterns(path: str, pattern: str, ignored: bool) -> None:
    assert is_ignored(path, [pattern]) is ignored


def test_unknown_commit_is_a_clear_error() -> None:
    with pytest.raises(BuildFailed) as failed:
        write_source_tar(MemoryObjectStore(), "f" * 40, io.BytesIO())
    assert failed.value.message == "Commit fffffff is not in the pushed objects."
