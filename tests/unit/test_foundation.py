"""Settings, names, tokens and the local admin commands, as an operator meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.errors import Conflict, InvalidName, SettingsError, Unauthorized
from shipway.files import write_atomically
from shipway.layout import Layout
from shipway.names import check_app_name
from shipway.settings import Settings, load_settings


def shipway(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipway.cli", "--home", str(home), *args],
                          capture_output=True, text=True)


def test_settings_default_when_file_missing(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "shipway.toml") == Settings()


def test_settings_are_read_by_section(tmp_path: Path) -> None:
    path = tmp_path / "shipway.toml"
    path.write_text("port = 6000\n[receive]\nmax_input_size = 1024\n[router]\ndomain = 'apps.test'\n")
    settings = load_settings(path)
    assert (settings.port, settings.receive_max_input_size, settings.router_domain) == (
        6000, 1024, "apps.test")


@pytest.mark.parametrize("text, key", [
    ("port = 'five'\n", "'port'"),
    ("[receive]\nmax_input_size = -1\n", "'receive.max_input_size'"),
    ("[build]\ntimeout = true\n", "'build.timeout'"),
    ("[nope]\nthing = 1\n", "'nope.thing'"),
    ("port = 70000\n", "'port'"),
])
def test_bad_setting_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "shipway.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=key):
        load_settings(path)


@pytest.mark.parametrize("name", ["a", "Abc", "1abc", "a_b", "a" * 31, "../x", "a/b", "a.b", ""])
def test_app_names_follow_herokus_rule(name: str) -> None:
    with pytest.raises(InvalidName, match="must start with a letter"):
        check_app_name(name)


def test_token_is_shown_once_and_only_its_hash_is_stored(layout: Layout) -> None:
    accounts = Accounts(layout)
    user, token = accounts.create_token("Dev@Example.com")
    assert user.email == "dev@example.com"
    assert token not in layout.users_file.read_text()
    assert accounts.authenticate(token).email == "dev@example.com"
    with pytest.raises(Unauthorized):
        accounts.authenticate(token + "x")
    accounts.revoke_token(user.tokens[0].id)
    with pytest.raises(Unauthorized):
        accounts.authenticate(token)


def test_app_creation_makes_repo_and_initial_release(layout: Layout) -> None:
    from release.store import ReleaseStore

    create_app(layout, "demo", "dev@example.com")
    assert (layout.repo_path("demo") / "HEAD").exists()
    v1 = ReleaseStore(layout).get("demo", 1)
    assert (v1.description, v1.status, v1.slug) == ("Initial release", "succeeded", "")
    with pytest.raises(Conflict, match="already taken"):
        create_app(layout, "demo", "dev@example.com")


def test_write_atomically_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "data" / "x.toml"
    write_atomically(target, "a = 1\n")
    write_atomically(target, "a = 2\n")
    assert target.read_text() == "a = 2\n"
    assert [p.name for p in target.parent.iterdir()] == ["x.toml"]


def test_cli_admin_session(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = shipway(home, "tokens:create", "ops@example.com", "--admin")
    assert created.returncode == 0, created.stderr
    assert "Created token" in created.stdout and "(admin)" in created.stdout
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("shp_")
    listed = shipway(home, "tokens:list")
    assert "ops@example.com admin" in listed.stdout and token not in listed.stdout
    app = shipway(home, "apps:create", "web-1", "--owner", "ops@example.com")
    assert app.returncode == 0 and "Creating web-1... done" in app.stdout
    bad = shipway(home, "apps:create", "Bad_Name", "--owner", "ops@example.com")
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "must start with a letter" in bad.stderr
    assert "Traceback" not in bad.stderr
    access = shipway(home, "access:add", "friend@example.com", "-a", "web-1")
    assert access.returncode == 0
    assert "friend@example.com  collaborator" in shipway(home, "access", "-a", "web-1").stdout


def test_cli_usage_error_exits_2(tmp_path: Path) -> None:
    result = shipway(tmp_path, "tokens:create")
    assert result.returncode == 2 and "Traceback" not in result.stderr
