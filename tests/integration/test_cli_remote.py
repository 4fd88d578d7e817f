"""The ``shipway`` CLI on a developer's laptop, driving a real server over HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_git
from tests.integration.conftest import make_repo
from tests.integration.test_api_support import (  # noqa: F401 - fixtures
    DEV,
    OTHER,
    ApiPlatform,
    api_platform_fixture,
    login,
    shipway_cli,
    valid,
)

OTHER_HOSTS = (
    "machine github.com\n  login octocat\n  password ghp_keepme\n"
    "machine api.heroku.com login me@example.com password heroku-keepme\n"
    "default login anonymous password guest\n"
)


def netrc() -> Path:
    return Path(os.environ["HOME"]) / ".netrc"


def test_login_keeps_other_hosts_netrc_entries_and_logout_too(
        api_platform: ApiPlatform) -> None:
    netrc().write_text(OTHER_HOSTS)
    result = login(api_platform)
    assert result.stdout == f"Logged in as {DEV} on {api_platform.url}\n"
    text = netrc().read_text()
    assert text.startswith(OTHER_HOSTS)
    assert f"machine 127.0.0.1\n  login {DEV}\n  password {api_platform.dev_token}\n" in text
    assert netrc().stat().st_mode & 0o777 == 0o600
    again = login(api_platform, who=OTHER)  # replaces this host's entry, no duplicate
    assert again.stdout.startswith(f"Logged in as {OTHER}")
    assert netrc().read_text().count("machine 127.0.0.1") == 1
    assert shipway_cli("auth:whoami").stdout == f"{OTHER}\n"
    out = shipway_cli("logout")
    assert out.stdout == f"Logging out of {api_platform.url}... done\n"
    assert netrc().read_text() == OTHER_HOSTS
    denied = shipway_cli("auth:whoami", check_rc=1)
    assert "Not logged in" in denied.stderr


def test_login_with_a_wrong_token_stores_nothing(api_platform: ApiPlatform) -> None:
    result = shipway_cli("login", "--server", api_platform.url, "--email", DEV,
                         "--token", "shp_wrong", check_rc=1)
    assert result.stderr.startswith(" !    Invalid credentials provided.")
    assert not netrc().exists()


def test_login_reads_email_and_token_from_stdin(api_platform: ApiPlatform) -> None:
    result = shipway_cli("login", "--server", api_platform.url,
                         input=f"{DEV}\n{api_platform.dev_token}\n")
    assert result.stdout.endswith(f"Logged in as {DEV} on {api_platform.url}\n")


def test_quick_start_apps_create_in_a_repository_then_git_push(
        api_platform: ApiPlatform, tmp_path: Path, git_bin: str) -> None:
    login(api_platform)
    work = make_repo(tmp_path / "hello")
    created = shipway_cli("apps:create", "hello", cwd=work)
    assert created.stdout.splitlines() == [
        "Creating hello... done",
        f"http://hello.localhost:8080/ | {api_platform.url}/hello.git",
        f"set git remote platform to {api_platform.url}/hello.git",
    ]
    assert run_git("remote", "get-url", "platform", cwd=work).stdout.strip() == \
        f"{api_platform.url}/hello.git"
    pushed = run_git("push", "platform", "master", cwd=work)  # credentials from ~/.netrc
    assert "* [new branch]      master -> master" in pushed.stderr
    assert remote_ref_of(api_platform, "hello") == run_git("rev-parse", "HEAD",
                                                           cwd=work).stdout.strip()
    info = shipway_cli("apps:info", cwd=work)  # the app comes from the platform remote
    assert info.stdout.splitlines()[:3] == [
        "=== hello", f"Git URL:       {api_platform.url}/hello.git",
        "Web URL:       http://hello.localhost:8080/"]
    listed = json.loads(shipway_cli("apps", "--json").stdout)
    assert [a["name"] for a in listed] == ["demo", "hello"]
    assert shipway_cli("open", "-a", "hello", "--no-browser").stdout == \
        "http://hello.localhost:8080/\n"


def remote_ref_of(platform: ApiPlatform, app: str) -> str:
    repo = str(platform.layout.repo_path(app))
    return run_git("--git-dir", repo, "rev-parse", "refs/heads/master", cwd=Path(repo)).stdout.strip()


def test_apps_create_without_a_name_generates_one(api_platform: ApiPlatform,
                                                   tmp_path: Path) -> None:
    login(api_platform)
    created = shipway_cli("apps:create", cwd=tmp_path)  # not a git repository: no remote
    name = created.stdout.splitlines()[0].removeprefix("Creating ").removesuffix("... done")
    assert len(name.split("-")) == 3 and name.split("-")[2].isdigit()
    assert len(created.stdout.splitlines()) == 2
    assert api_platform.layout.app_file(name).exists()


def test_no_app_given_is_a_usage_error_naming_both_ways(api_platform: ApiPlatform,
                                                        tmp_path: Path) -> None:
    login(api_platform)
    result = shipway_cli("apps:info", cwd=tmp_path, check_rc=2)
    assert "use -a APP, or run this inside a git repository whose 'platform' remote" \
        in result.stderr
    assert result.stdout == ""


def test_someone_elses_app_and_unknown_apps_fail_cleanly(api_platform: ApiPlatform,
                                                        tmp_path: Path) -> None:
    login(api_platform, who=OTHER)
    denied = shipway_cli("apps:info", "-a", "demo", check_rc=1)
    assert denied.stderr == " !    Couldn't find that app: demo.\n"  # as for a missing one
    missing = shipway_cli("apps:info", "-a", "nope", check_rc=1)
    assert missing.stderr == " !    Couldn't find that app: nope.\n"
    bad = shipway_cli("apps:info", "-a", "Bad_Name", check_rc=1)
    assert "is invalid" in bad.stderr


def test_git_remote_git_clone_and_destroy(api_platform: ApiPlatform, tmp_path: Path,
                                          git_bin: str) -> None:
    login(api_platform)
    work = make_repo(tmp_path / "work")
    shipway_cli("git:remote", "-a", "demo", cwd=work)
    run_git("push", "-q", "platform", "master", cwd=work)
    shipway_cli("git:clone", "-a", "demo", cwd=tmp_path)
    assert (tmp_path / "demo" / "README").read_text() == "hello\n"
    assert run_git("remote", cwd=tmp_path / "demo").stdout == "platform\n"
    refused = shipway_cli("apps:destroy", "-a", "demo", check_rc=2)
    assert "confirm with --confirm demo" in refused.stderr
    assert api_platform.layout.app_file("demo").exists()
    gone = shipway_cli("apps:destroy", "-a", "demo", "--confirm", "demo")
    assert gone.stdout == "Destroying demo (including all add-ons)... done\n"
    assert not api_platform.layout.app_file("demo").exists()


def test_server_is_unreachable(tmp_path: Path) -> None:
    result = shipway_cli("login", "--server", "http://127.0.0.1:9", "--email", DEV,
                         "--token", "shp_x", check_rc=1)
    assert result.stderr.startswith(" !    Cannot reach http://127.0.0.1:9")


def test_local_admin_apps_create_still_works(tmp_path: Path) -> None:
    home = tmp_path / "var"
    result = shipway_cli("--home", str(home), "apps:create", "local", "--owner", DEV)
    assert result.stdout.startswith("Creating local... done\n")
    generated = shipway_cli("--home", str(home), "apps:create", "--owner", DEV, cwd=tmp_path)
    assert generated.stdout.startswith("Creating ")
    no_owner = shipway_cli("--home", str(home), "apps:create", "x-app", check_rc=2)
    assert "--owner" in no_owner.stderr


def test_shipway_server_env_picks_the_server_and_netrc_the_credentials(
        api_platform: ApiPlatform) -> None:
    login(api_platform)
    (Path(os.environ["HOME"]) / ".config" / "shipway" / "config.toml").unlink()
    found = shipway_cli("apps", "--json", env={"SHIPWAY_SERVER": api_platform.url})
    apps = json.loads(found.stdout)
    assert [a["name"] for a in apps] == ["demo"]
    for doc in apps:
        valid(doc, "app")


def test_release_and_config_commands_through_the_api_print_what_local_ones_do(
        api_platform: ApiPlatform, tmp_path: Path) -> None:
    login(api_platform)
    work = make_repo(tmp_path / "work")
    shipway_cli("git:remote", "-a", "demo", cwd=work)  # the app comes from the remote
    changed = shipway_cli("config:set", "GREETING=hello world", "URL=a=b", cwd=work)
    assert changed.stdout == "Setting GREETING, URL demo... done, v2\nGREETING: hello world\n" \
        "URL: a=b\n"
    assert shipway_cli("config:get", "URL", cwd=work).stdout == "a=b\n"
    assert shipway_cli("config:unset", "URL", cwd=work).stdout == \
        "Unsetting URL demo... done, v3\n"
    local = {"env": {"SHIPWAY_USER": DEV}}
    home = ("--home", str(api_platform.layout.home))
    for argv in (["config"], ["config", "--json"], ["releases"], ["releases", "--json"],
                 ["releases", "-n", "1"], ["releases:info"], ["releases:info", "v2"]):
        remote = shipway_cli(*argv, "-a", "demo")
        assert remote.stdout == shipway_cli(*home, *argv, "-a", "demo", **local).stdout, argv
    listed = shipway_cli("releases", cwd=work).stdout.splitlines()
    assert listed[0] == "=== demo Releases - Current: v3"
    assert listed[1].split()[:5] == ["v3", "Remove", "URL", "config", "vars"]
    assert listed[1].endswith(f"{DEV}  less than a minute ago")
    assert listed[3].startswith("v1  Initial release")
    rows = json.loads(shipway_cli("releases", "--json", cwd=work).stdout)
    assert [(r["version"], r["current"]) for r in rows] == [(3, True), (2, False), (1, False)]
    info = shipway_cli("releases:info", "v2", cwd=work).stdout.splitlines()
    assert info[:3] == ["=== Release v2", "Change:  Set GREETING, URL config vars",
                        f"By:      {DEV}"]
    assert info[5:8] == ["Config:", "  GREETING => hello world", "  URL => a=b"]


def test_releases_list_marks_pruned_slugs(api_platform: ApiPlatform) -> None:
    login(api_platform)
    from release.store import ReleaseStore

    ReleaseStore(api_platform.layout).create(
        "demo", description="Deploy 1a2b3c4", user=DEV, status="succeeded", slug="f" * 64)
    listed = shipway_cli("releases", "-a", "demo").stdout.splitlines()
    assert listed[1].startswith("v2  Deploy 1a2b3c4 (slug pruned)  dev@example.com")
    assert "(slug pruned)" not in listed[2]
    assert json.loads(shipway_cli("releases", "--json", "-a", "demo").stdout)[0][
        "slug_pruned"] is True


def test_remote_release_commands_fail_with_one_line(api_platform: ApiPlatform,
                                                    tmp_path: Path) -> None:
    login(api_platform)
    for argv in (["releases"], ["config"], ["config:set", "A=1"], ["rollback"], ["ps"],
                 ["ps:scale", "web=1"], ["restart"], ["logs"], ["releases:info"],
                 ["ps:stop", "web"], ["ps:restart", "web.1"], ["run", "true"],
                 ["run:detached", "true"], ["logs", "-p", "web"]):
        failed = shipway_cli(*argv, "-a", "nope", check_rc=1)
        assert failed.stderr == " !    Couldn't find that app: nope.\n", argv
        assert failed.stdout == ""
    cases = [
        (["rollback", "v1"], 1, " !    Cannot roll back to v1: it has no slug"),
        (["rollback", "v9"], 1, " !    Release v9 not found for demo."),
        (["config:get", "NOPE"], 1, " !    Config var NOPE is not set on demo."),
        (["ps:scale", "web=1"], 1, " !    demo has no deployed code yet"),
        (["releases:output", "v1"], 1, " !    v1 has no output"),
        (["rollback", "latest"], 2, " !    'latest' is not a release version"),
        (["logs", "-n", "-1"], 2, " !    -n/--num must be 0 or more."),
        (["logs", "-p", "web 1"], 2, " !    'web 1' is not a dyno or process type"),
        (["ps:stop", "Web!"], 2, " !    'Web!' is not a dyno or process type"),
        (["run"], 2, " !    Usage: shipway run COMMAND"),
        (["ps:stop", "web"], 1, " !    demo has no deployed code yet"),
        (["run", "true"], 1, " !    demo has no deployed code yet"),
    ]
    for argv, code, message in cases:
        failed = shipway_cli(*argv, "-a", "demo", check_rc=code)
        assert failed.stderr.startswith(message), (argv, failed.stderr)
        assert len(failed.stderr.splitlines()) == 1, failed.stderr
    assert api_platform.layout.app_file("demo").exists()
    no_app = shipway_cli("releases", cwd=tmp_path, check_rc=2)
    assert "use -a APP, or run this inside a git repository whose 'platform' remote" \
        in no_app.stderr


def test_after_login_user_commands_go_to_the_server_even_with_shipway_home_set(
        api_platform: ApiPlatform, tmp_path: Path) -> None:
    login(api_platform)
    assert netrc().read_text().endswith("\n")
    env = {"SHIPWAY_HOME": str(tmp_path / "some-other-home")}
    created = shipway_cli("apps:create", "elsewhere", "--no-remote", env=env)
    assert created.stdout.startswith("Creating elsewhere... done")
    assert api_platform.layout.app_file("elsewhere").exists()
    assert not (tmp_path / "some-other-home" / "apps").exists()
    who = shipway_cli("auth:whoami", env=env)
    assert who.stdout == f"{DEV}\n"
    assert who.stderr == (f"Commands go to {api_platform.url} (shipway login); --home DIR "
                          "works on a data home instead.\n")
    local = shipway_cli("--home", str(api_platform.layout.home), "auth:whoami")
    assert local.stderr.startswith("Local mode: commands work on the data home ")
    listed = shipway_cli("--home", str(api_platform.layout.home), "apps", "--json")
    assert "elsewhere" in listed.stdout


def test_builds_cache_purge_through_the_api(api_platform: ApiPlatform) -> None:
    login(api_platform)
    cache = api_platform.layout.cache_dir("demo")
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "cache.tar").write_bytes(b"x" * 1234)
    purged = shipway_cli("builds:cache:purge", "-a", "demo")
    assert purged.stdout == ("Purging build cache for demo... done, 1234 bytes freed\n"
                             "The next build starts cold.\n")
    assert not cache.exists()
    denied = shipway_cli("builds:cache:purge", "-a", "demo", check_rc=1,
                         env={"SHIPWAY_SERVER": api_platform.url, "HOME": "/nonexistent"})
    assert denied.stderr.startswith(" !    Not logged in")
