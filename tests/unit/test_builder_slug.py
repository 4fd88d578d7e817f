"""Slugs: deterministic bytes, a valid (multi-member) gzip, the archive's records."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.slug import (
    MEMBER_SIZE,
    ParallelGzipWriter,
    SlugArchive,
    SlugTooLarge,
    gzip_member,
    write_slug,
)
from shipway.layout import Layout


def source_tar(entries: list[tuple[str, bytes | None, int]], *, mtime: int, uid: int) -> io.BytesIO:
    """A tar like Docker's get_archive gives: ``(name, data or None for a dir, mode)``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.mode = mtime, uid, uid, mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


ENTRIES: list[tuple[str, bytes | None, int]] = [
    ("app", None, 0o755), ("app/bin", None, 0o700), ("app/bin/run", b"#!/bin/sh\n", 0o775),
    ("app/a.txt", b"hello", 0o600), ("app/z.txt", b"z" * 1000, 0o644),
]


def slug_bytes(entries: list[tuple[str, bytes | None, int]], mtime: int, uid: int) -> bytes:
    target = io.BytesIO()
    write_slug(source_tar(entries, mtime=mtime, uid=uid), target)
    return target.getvalue()


def test_same_content_gives_same_bytes_whatever_order_owner_and_time() -> None:
    first = slug_bytes(ENTRIES, mtime=1_700_000_000, uid=0)
    second = slug_bytes(list(reversed(ENTRIES)), mtime=1_800_000_000, uid=1234)
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # no mtime in the gzip header
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["app", "app/a.txt", "app/bin", "app/bin/run",
                                             "app/z.txt"]
        assert {(m.name, m.mode) for m in members if m.isreg()} == {
            ("app/a.txt", 0o644), ("app/bin/run", 0o755), ("app/z.txt", 0o644)}
        assert {(m.uid, m.gid, m.uname, m.mtime) for m in members} == {(1000, 1000, "app",
                                                                       315532800)}


def test_big_slug_is_a_multi_member_gzip_any_reader_accepts(tmp_path: Path) -> None:
    big = os.urandom(MEMBER_SIZE) * 2 + b"tail"
    data = slug_bytes([("app", None, 0o755), ("app/big.bin", big, 0o644)], 1, 1)
    assert data.count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff") >= 3
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        extracted = tar.extractfile("app/big.bin")
        assert extracted is not None and extracted.read() == big
    path = tmp_path / "slug.tar.gz"
    path.write_bytes(data)
    listing = subprocess.run(["tar", "-tzf", str(path)], check=True, capture_output=True,
                             text=True).stdout.split()
    assert listing == ["app/", "app/big.bin"]


def test_empty_input_is_still_a_valid_gzip() -> None:
    target = io.BytesIO()
    writer = ParallelGzipWriter(target)
    writer.close()
    assert gzip.decompress(target.getvalue()) == b""
    assert gzip.decompress(gzip_member(b"abc")) == b"abc"


def test_writer_stops_at_the_maximum_size() -> None:
    target = io.BytesIO()
    writer = ParallelGzipWriter(target, max_size=1000)
    with pytest.raises(SlugTooLarge) as failed:
        writer.write(os.urandom(3 * MEMBER_SIZE))
        writer.close()
    assert failed.value.message.startswith("Compiled slug size: ")
    assert failed.value.message.endswith("is too large (max is 1.0KB).")


def test_hard_links_become_files_and_devices_are_dropped() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("app/data")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("app/alias")
        link.type, link.linkname = tarfile.LNKTYPE, "app/data"
        tar.addfile(link)
        fifo = tarfile.TarInfo("app/pipe")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
    buffer.seek(0)
    target = io.BytesIO()
    write_slug(buffer, target)
    with tarfile.open(fileobj=io.BytesIO(target.getvalue())) as tar:
        assert tar.getnames() == ["app/alias", "app/data"]
        alias = tar.extractfile("app/alias")
        assert alias is not None and alias.read() == b"abc"


def test_archive_stores_verifies_and_resolves(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path / "home")
    layout.ensure()
    archive = SlugArchive(layout)
    gz = tmp_path / "new.tar.gz"
    gz.write_bytes(slug_bytes(ENTRIES, 1, 1))
    slug = archive.add(gz, app="demo", commit="c" * 40, created_at="2026-01-01T00:00:00Z",
                       process_types={"web": "x"}, build_key="k")
    assert archive.get(slug.id) == slug
    assert archive.resolve(slug.id[:7]) == slug
    archive.verify(slug.id)
    assert not gz.exists()
