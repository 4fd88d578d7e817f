"""Slug tools on slugs as the builder writes them: many gzip members, ``app/`` entries."""

from __future__ import annotations

import io
import os
import tarfile

from builder.slug import SlugArchive, write_slug
from release.store import ReleaseStore
from shipway import slugtools
from shipway.apps import create_app
from shipway.layout import Layout


def built_slug(layout: Layout, files: dict[str, bytes], *, link: str | None = None) -> str:
    """A slug made by builder.slug.write_slug (the real normaliser and parallel gzip)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"app/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo("app/current")
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
    raw.seek(0)
    layout.slugs_dir.mkdir(parents=True, exist_ok=True)
    target = layout.slugs_dir / "incoming.tar.gz"
    with target.open("wb") as fh:
        write_slug(raw, fh, threads=2)
    slug = SlugArchive(layout).add(target, app="demo", commit="a" * 40,
                                   created_at="2020-01-01T00:00:00Z")
    return slug.id


def test_a_multi_member_slug_is_listed_read_and_diffed(layout: Layout) -> None:
    big = os.urandom(3 << 20)  # with the others, over one 4 MiB gzip member
    old_id = built_slug(layout, {"big.bin": big, "small.txt": b"one\n", "gone.txt": b"x"})
    new_id = built_slug(layout, {"big.bin": big, "small.txt": b"two\n", "tail.bin": big},
                        link="small.txt")
    archive = SlugArchive(layout)
    old, new = archive.get(old_id), archive.get(new_id)
    assert [(e.path, e.size) for e in slugtools.entries(layout, new)] == [
        ("big.bin", len(big)), ("current", 0), ("small.txt", 4), ("tail.bin", len(big))]
    assert b"".join(slugtools.read_file(layout, new, "tail.bin")) == big
    found = slugtools.diff(layout, old, new)
    assert [e.path for e in found.added] == ["current", "tail.bin"]
    assert [e.path for e in found.removed] == ["gone.txt"]
    assert [(a.path, b.path) for a, b in found.changed] == [("small.txt", "small.txt")]
    link = next(e for e in found.added if e.path == "current")
    assert (link.kind, link.target, link.mode_text) == ("symlink", "small.txt", "lrwxrwxrwx")


def test_prune_keeps_recent_current_and_young_slugs(layout: Layout) -> None:
    create_app(layout, "demo", "dev@example.com")
    store = ReleaseStore(layout)
    ids = [built_slug(layout, {"n": str(n).encode()}) for n in range(3)]
    for slug_id in ids:
        store.create("demo", description="Deploy", user="dev@example.com", status="succeeded",
                     slug=slug_id, launched=True)
    # v4 rolls back to the first slug: it is current again, however old
    store.create("demo", description="Rollback to v2", user="dev@example.com",
                 status="succeeded", slug=ids[0], launched=True)
    plan = slugtools.prune(layout, keep=1, dry_run=True)
    assert [s.id for s in plan.remove] == sorted([ids[1], ids[2]])
    assert set(SlugArchive(layout).ids()) == set(ids)
    done = slugtools.prune(layout, keep=2, dry_run=False)
    assert [s.id for s in done.remove] == [ids[1]] and not done.dry_run
    assert set(SlugArchive(layout).ids()) == {ids[0], ids[2]}
    # a slug younger than min_age may belong to a push whose release is not written yet
    unreleased = built_slug(layout, {"n": b"new"})
    assert unreleased in slugtools.plan_prune(layout, keep=0, min_age=10**12).keep
    assert unreleased in [s.id for s in slugtools.plan_prune(layout, keep=0, min_age=0).remove]
