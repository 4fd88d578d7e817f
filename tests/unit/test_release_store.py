"""Release records on disk: numbering, the TOML round trip, and what a crash leaves."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from release.store import ReleaseStore
from shipway.apps import create_app
from shipway.errors import Conflict
from shipway.layout import Layout

AWKWARD = 'line one\nline "two"\ttabbed \\ back\\slash \u00fcn\u00efc\u00f8d\u00e9 \U0001f680 = [x]'


@pytest.fixture
def store(layout: Layout) -> ReleaseStore:
    create_app(layout, "shop", "dev@example.com")
    return ReleaseStore(layout)


def test_apps_start_at_v1_and_each_release_is_one_toml_file(
    store: ReleaseStore, layout: Layout
) -> None:
    assert [r.description for r in store.list("shop")] == ["Initial release"]
    store.create("shop", description="Set A config vars", user="dev@example.com",
                 status="succeeded", config={"A": AWKWARD})
    files = sorted(p.name for p in layout.releases_dir("shop").glob("v*.toml"))
    assert files == ["v0000001.toml", "v0000002.toml"]
    again = ReleaseStore(layout).get("shop", 2)
    assert again.config == {"A": AWKWARD}
    assert (again.version, again.status, again.user) == (2, "succeeded", "dev@example.com")
    assert store.current("shop") == again


def test_a_finished_release_is_never_rewritten(store: ReleaseStore, layout: Layout) -> None:
    pending = store.create("shop", description="Deploy 1a2b3c4", user="dev@example.com",
                           slug="f" * 64)
    assert store.current("shop") == store.get("shop", 1)
    failed = store.finish(pending, "failed", failure="web exited\nwith status 1")
    assert failed.failure == "web exited with status 1"
    before = (layout.releases_dir("shop") / "v0000002.toml").read_bytes()
    with pytest.raises(Conflict, match="Release v2 is already failed."):
        store.finish(pending, "succeeded", launched=True)
    assert (layout.releases_dir("shop") / "v0000002.toml").read_bytes() == before
    assert store.current("shop") == store.get("shop", 1)


def test_a_leftover_temp_file_is_ignored_then_cleaned(store: ReleaseStore, layout: Layout) -> None:
    leftover = layout.releases_dir("shop") / ".tmp-crashed"
    leftover.write_text('version = 2\ndescription = "torn')
    assert store.versions("shop") == [1]
    assert [r.version for r in store.list("shop")] == [1]
    store.create("shop", description="Set A config vars", user="dev@example.com",
                 status="succeeded")
    assert not leftover.exists()
    assert store.versions("shop") == [1, 2]


def test_a_writer_that_dies_mid_write_leaves_no_release_file(
    store: ReleaseStore, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.create("shop", description="Set A config vars", user="dev@example.com")
    monkeypatch.undo()
    assert sorted(p.name for p in layout.releases_dir("shop").iterdir()) == [
        ".lock", "v0000001.toml"
    ]
    assert store.create("shop", description="Set B config vars",
                        user="dev@example.com").version == 2


def _create_many(home: str, count: int) -> None:
    store = ReleaseStore(Layout.at(home))
    for i in range(count):
        store.create("shop", description=f"Set K{os.getpid()}_{i} config vars",
                     user="dev@example.com", status="succeeded")


def test_concurrent_writers_in_processes_leave_no_gap_and_no_duplicate(
    store: ReleaseStore, layout: Layout
) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_create_many, args=(str(layout.home), 5)) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert store.versions("shop") == list(range(1, 32))
    descriptions = [r.description for r in store.list("shop")[1:]]
    assert len(set(descriptions)) == 30


def test_next_version_counts_from_the_latest_file(store: ReleaseStore, tmp_path: Path) -> None:
    assert store.next_version("shop") == 2
    assert store.next_version("other") == 1
