"""Config vars on an app that has no slug yet: no Docker, same rules as with one."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from release.config import config_var, config_vars, describe_changes, parse_assignments, set_config
from release.store import ReleaseStore
from shipway.apps import create_app
from shipway.errors import InvalidName, NotFound, UsageError
from shipway.layout import Layout
from shipway.settings import Settings

USER = "dev@example.com"


class Printed:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.lines.append(f" !     {text}")


class NoDocker:
    """Config changes on an app without a slug must not touch Docker at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"docker.{name} used")


@pytest.fixture
def app(layout: Layout) -> str:
    create_app(layout, "shop", USER)
    return "shop"


def change(layout: Layout, changes: dict[str, str | None]) -> Any:
    return set_config(layout, Settings(), app="shop", changes=changes, user=USER,
                      out=Printed(), docker=NoDocker())


def test_each_change_is_one_release_with_the_full_snapshot(layout: Layout, app: str) -> None:
    v2 = change(layout, {"FOO": "1", "BAR": "2"})
    v3 = change(layout, {"FOO": None})
    assert (v2.version, v2.description, v2.config) == (2, "Set FOO, BAR config vars",
                                                       {"FOO": "1", "BAR": "2"})
    assert (v3.version, v3.description, v3.config) == (3, "Remove FOO config vars", {"BAR": "2"})
    assert config_vars(layout, app) == {"BAR": "2"}
    assert ReleaseStore(layout).current(app) == v3


def test_values_keep_any_utf8_exactly(layout: Layout, app: str) -> None:
    value = '-----BEGIN KEY-----\nabc=\n"q" \\n \u00e9\u4e2d\U0001f600\t\r\n-----END KEY-----\n'
    change(layout, {"PRIVATE_KEY": value})
    assert config_var(layout, app, "PRIVATE_KEY") == value


@pytest.mark.parametrize("key", ["1ABC", "FOO-BAR", "", "A B", "caf\u00e9"])
def test_an_invalid_key_is_refused_and_nothing_changes(layout: Layout, app: str, key: str) -> None:
    with pytest.raises(InvalidName, match="Invalid config var name"):
        change(layout, {key: "x"})
    assert ReleaseStore(layout).versions(app) == [1]


@pytest.mark.parametrize("key", ["PORT", "DYNO"])
def test_a_reserved_key_is_refused(layout: Layout, app: str, key: str) -> None:
    with pytest.raises(InvalidName, match=f"Config var {key} is reserved and set by Shipway."):
        change(layout, {key: "1"})
    with pytest.raises(InvalidName):
        change(layout, {key: None})
    assert ReleaseStore(layout).versions(app) == [1]


def test_bad_assignments_and_empty_changes_are_usage_errors(layout: Layout, app: str) -> None:
    with pytest.raises(UsageError, match="FOO is invalid. Must be in the format FOO=bar."):
        parse_assignments(["FOO"])
    assert parse_assignments(["URL=a=b", "EMPTY="]) == {"URL": "a=b", "EMPTY": ""}
    with pytest.raises(UsageError, match="No config vars given"):
        change(layout, {})
    with pytest.raises(UsageError, match="NUL"):
        change(layout, {"A": "x\x00y"})
    with pytest.raises(NotFound, match="Config var NOPE is not set on shop."):
        config_var(layout, app, "NOPE")
    assert ReleaseStore(layout).versions(app) == [1]


def test_unknown_app(layout: Layout) -> None:
    with pytest.raises(NotFound, match="Couldn't find that app: nope."):
        set_config(layout, Settings(), app="nope", changes={"A": "1"}, user=USER,
                   out=Printed(), docker=NoDocker())


def test_describe_changes_like_heroku() -> None:
    assert describe_changes({"A": "1"}) == "Set A config vars"
    assert describe_changes({"A": None, "B": None}) == "Remove A, B config vars"
    assert describe_changes({"A": "1", "B": None}) == "Set A and remove B config vars"


def test_ten_concurrent_changes_make_ten_contiguous_releases(layout: Layout, app: str) -> None:
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            change(layout, {f"KEY_{i}": str(i)})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = ReleaseStore(layout)
    assert store.versions(app) == list(range(1, 12))
    assert config_vars(layout, app) == {f"KEY_{i}": str(i) for i in range(10)}
    # every release holds the previous snapshot plus its own key: no lost update
    sizes = [len(r.config) for r in store.list(app)]
    assert sizes == list(range(0, 11))


def test_a_release_left_pending_by_a_crashed_writer_is_marked_failed(
    layout: Layout, app: str
) -> None:
    store = ReleaseStore(layout)
    store.create(app, description="Deploy 1a2b3c4", user=USER, slug="f" * 64)
    v3 = change(layout, {"FOO": "1"})
    assert v3.version == 3
    crashed = store.get(app, 2)
    assert (crashed.status, crashed.failure) == (
        "failed", "interrupted before it finished launching")
