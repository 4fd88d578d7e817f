"""Rollback refusals: each one leaves the releases exactly as they were."""

from __future__ import annotations

from typing import Any

import pytest

from builder.slug import SlugArchive
from release.rollback import rollback
from release.store import ReleaseStore
from release.testing import make_slug, web_app_files
from shipway.apps import create_app
from shipway.errors import Conflict, NotFound
from shipway.layout import Layout
from shipway.settings import Settings

USER = "dev@example.com"


class NoDocker:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"docker.{name} used")


class Printed:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.lines.append(f" !     {text}")


@pytest.fixture
def store(layout: Layout) -> ReleaseStore:
    """v1 initial, v2 deployed (succeeded), v3 failed deploy, v4 deployed, slug of v4 pruned."""
    create_app(layout, "shop", USER)
    store = ReleaseStore(layout)
    good = make_slug(layout, "shop", web_app_files("A"), {"web": "python3 app.py"})
    other = make_slug(layout, "shop", web_app_files("B"), {"web": "python3 app.py"})
    v2 = store.create("shop", description="Deploy aaaaaaa", user=USER, slug=good.id)
    store.finish(v2, "succeeded", launched=True)
    v3 = store.create("shop", description="Deploy bbbbbbb", user=USER, slug=other.id)
    store.finish(v3, "failed", failure="web exited with status 1")
    v4 = store.create("shop", description="Deploy ccccccc", user=USER, slug=other.id)
    store.finish(v4, "succeeded", launched=True)
    SlugArchive(layout).remove(other.id)
    return store


def refuse(layout: Layout, version: int | None) -> None:
    rollback(layout, Settings(), app="shop", version=version, user=USER, out=Printed(),
             docker=NoDocker())


@pytest.mark.parametrize(
    ("version", "error", "message"),
    [
        (999, NotFound, "Release v999 not found for shop."),
        (1, Conflict, r"Cannot roll back to v1: it has no slug \(nothing was deployed\)."),
        (3, Conflict, "Cannot roll back to v3: that release failed."),
        (4, Conflict, r"Cannot roll back to v4: its slug [0-9a-f]{12} was pruned."),
    ],
)
def test_rollback_refusals(store: ReleaseStore, layout: Layout, version: int,
                           error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        refuse(layout, version)
    assert store.versions("shop") == [1, 2, 3, 4]


def test_rollback_of_an_unknown_app(layout: Layout) -> None:
    with pytest.raises(NotFound, match="Couldn't find that app: nope."):
        rollback(layout, Settings(), app="nope", version=2, user=USER, out=Printed(),
                 docker=NoDocker())
