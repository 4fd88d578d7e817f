"""The release commands as a user types them (an app without a slug: no Docker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from release.store import ReleaseStore
from shipway.apps import create_app
from shipway.cli import main
from shipway.layout import Layout


@pytest.fixture
def shop(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Layout:
    create_app(layout, "shop", "dev@example.com")
    monkeypatch.setenv("SHIPWAY_USER", "dev@example.com")
    return layout


def run(layout: Layout, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--home", str(layout.home), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_config_set_get_unset_and_the_release_list(
    shop: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(shop, capsys, "config:set", "GREETING=hello world", "URL=a=b", "-a", "shop")
    assert (code, out) == (0, "Setting GREETING, URL shop... done, v2\n"
                              "GREETING: hello world\nURL: a=b\n")
    assert run(shop, capsys, "config", "-a", "shop")[1] == (
        "=== shop Config Vars\nGREETING: hello world\nURL:      a=b\n"
    )
    assert json.loads(run(shop, capsys, "config", "--json", "-a", "shop")[1]) == {
        "GREETING": "hello world", "URL": "a=b"}
    assert run(shop, capsys, "config:get", "URL", "-a", "shop")[1] == "a=b\n"
    assert run(shop, capsys, "config:unset", "URL", "-a", "shop")[1].startswith(
        "Unsetting URL shop... done, v3")
    code, out, _ = run(shop, capsys, "releases", "-a", "shop")
    lines = out.splitlines()
    assert lines[0] == "=== shop Releases - Current: v3"
    assert lines[1].split("  ")[0:1] == ["v3"]
    assert "Remove URL config vars" in lines[1] and "dev@example.com" in lines[1]
    assert lines[1].endswith("less than a minute ago")
    assert "Set GREETING, URL config vars" in lines[2]
    assert lines[3].startswith("v1  Initial release")
    assert len(run(shop, capsys, "releases", "-n", "1", "-a", "shop")[1].splitlines()) == 2


def test_releases_info_shows_one_release(shop: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    run(shop, capsys, "config:set", "GREETING=hi", "-a", "shop")
    code, out, _ = run(shop, capsys, "releases:info", "v2", "-a", "shop")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "=== Release v2"
    assert lines[1] == "Change:  Set GREETING config vars"
    assert lines[2] == "By:      dev@example.com"
    assert lines[3].startswith("When:    ")
    assert lines[4:7] == ["Addons:  (none)", "Config:", "  GREETING => hi"]
    assert lines[-1] == "Status:  succeeded"


def test_releases_json_marks_the_current_one(
    shop: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shop, capsys, "config:set", "A=1", "-a", "shop")
    listed = json.loads(run(shop, capsys, "releases", "--json", "-a", "shop")[1])
    assert [(r["version"], r["current"], r["status"]) for r in listed] == [
        (2, True, "succeeded"), (1, False, "succeeded")]
    assert listed[0]["description"] == "Set A config vars"


def test_failed_releases_are_marked(shop: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    store = ReleaseStore(shop)
    pending = store.create("shop", description="Deploy 1a2b3c4", user="dev@example.com",
                           slug="f" * 64)
    store.finish(pending, "failed", failure="release command failed with status 3")
    out = run(shop, capsys, "releases", "-a", "shop")[1]
    assert "v2  Deploy 1a2b3c4 (release command failed)" in out
    assert out.splitlines()[0] == "=== shop Releases - Current: v1"
    info = run(shop, capsys, "releases:info", "-a", "shop")[1]
    assert "Status:  failed: release command failed with status 3" in info


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config:set", "1BAD=x", "-a", "shop"], "Invalid config var name '1BAD'"),
        (["config:set", "PORT=80", "-a", "shop"], "Config var PORT is reserved"),
        (["config:set", "NOEQUALS", "-a", "shop"], "NOEQUALS is invalid. Must be in the format"),
        (["rollback", "v999", "-a", "shop"], "Release v999 not found for shop."),
        (["rollback", "v1", "-a", "shop"], "Cannot roll back to v1: it has no slug"),
        (["rollback", "latest", "-a", "shop"], "'latest' is not a release version"),
        (["releases:info", "v7", "-a", "shop"], "Release v7 not found for shop."),
        (["releases:output", "v1", "-a", "shop"], "v1 has no output"),
        (["config", "-a", "nope"], "Couldn't find that app: nope."),
        (["ps:scale", "web", "-a", "shop"], "Invalid scaling argument 'web'"),
        (["releases", "-n", "0", "-a", "shop"], "-n must be 1 or more."),
        (["logs", "-n", "-1", "-a", "shop"], "-n/--num must be 0 or more."),
        (["ps:scale", "web=1", "-a", "shop"], "shop has no deployed code yet"),
    ],
)
def test_bad_input_says_why_and_changes_nothing(
    shop: Layout, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(shop, capsys, *argv)
    assert code in (1, 2)
    assert message in err
    assert ReleaseStore(shop).versions("shop") == [1]


def test_releases_mark_a_pruned_slug_and_json_says_so(
    shop: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    ReleaseStore(shop).create("shop", description="Deploy 1a2b3c4", user="dev@example.com",
                              status="succeeded", slug="e" * 64, launched=True)
    lines = run(shop, capsys, "releases", "-a", "shop")[1].splitlines()
    assert lines[0] == "=== shop Releases - Current: v2"
    assert lines[1].startswith("v2  Deploy 1a2b3c4 (slug pruned)  dev@example.com")
    assert "pruned" not in lines[2]
    listed = json.loads(run(shop, capsys, "releases", "--json", "-a", "shop")[1])
    assert [(r["version"], r["slug_pruned"]) for r in listed] == [(2, True), (1, False)]
    code, _, err = run(shop, capsys, "rollback", "v2", "-a", "shop")
    assert code == 1 and "its slug eeeeeeeeeeee was pruned" in err
    assert ReleaseStore(shop).versions("shop") == [1, 2]


def test_no_app_and_no_platform_remote_is_a_usage_error(
    shop: Layout, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(shop, capsys, "config")
    assert (code, out) == (2, "")
    assert "use -a APP, or run this inside a git repository whose 'platform' remote" in err
