"""The admins' slug tools through the CLI and the API, on slugs made by hand."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from builder.slug import SlugArchive, SlugCorrupt
from release.rollback import rollback_target
from release.store import ReleaseStore
from shipway.apps import create_app
from tests.integration.test_api_support import (  # noqa: F401 - fixtures
    ADMIN,
    OTHER,
    ApiPlatform,
    add_slug,
    api_platform_fixture,
    deployed,
    login,
    shipway_cli,
    valid,
)

V1 = {"app.py": "print('one')\n", "Procfile": "web: python3 app.py\n",
      "lib/util.py": "X = 1\n", "old.txt": "bye\n"}
V2 = {"app.py": "print('two')\n", "Procfile": "web: python3 app.py\n",
      "lib/util.py": "X = 1\n", "new.txt": "hi\n"}


def two_deploys(platform: ApiPlatform) -> tuple[str, str]:
    layout = platform.layout
    one = add_slug(layout, "demo", V1)
    deployed(layout, "demo", one)
    two = add_slug(layout, "demo", V2)
    deployed(layout, "demo", two)
    return one.id, two.id


def test_slugs_lists_every_slug_with_its_releases(api_platform: ApiPlatform) -> None:
    one, two = two_deploys(api_platform)
    login(api_platform, who=ADMIN)
    listed = shipway_cli("slugs").stdout.splitlines()
    assert listed[0] == "=== Slugs"
    assert listed[1].split() == ["ID", "APPS", "SIZE", "CREATED", "RELEASES", "CURRENT"]
    rows = {line.split()[0]: line.split()[1:] for line in listed[2:]}
    assert rows[one[:12]] == ["demo", "0.2KB", "2020-01-01T00:00:00Z", "demo", "v2", "no"]
    assert rows[two[:12]] == ["demo", "0.2KB", "2020-01-01T00:00:00Z", "demo", "v3", "yes"]
    docs = json.loads(shipway_cli("slugs", "--json", "-a", "demo").stdout)
    for doc in docs:
        valid(doc, "slug")
    assert [(d["id"], d["current"], d["releases"]) for d in docs] == [
        (one, False, [{"app": "demo", "version": 2, "current": False}]),
        (two, True, [{"app": "demo", "version": 3, "current": True}]),
    ]


def test_slugs_are_for_admins_only(api_platform: ApiPlatform) -> None:
    two_deploys(api_platform)
    login(api_platform)
    denied = shipway_cli("slugs", check_rc=1)
    assert denied.stderr == " !    This needs an admin token.\n"


def test_slugs_info_contents_and_cat(api_platform: ApiPlatform) -> None:
    one, _ = two_deploys(api_platform)
    login(api_platform, who=ADMIN)
    info = shipway_cli("slugs:info", one[:8]).stdout.splitlines()
    assert info[0] == f"=== Slug {one[:12]}"
    assert f"Checksum:      SHA256:{one}" in info
    assert "Process types: web: python3 app.py" in info
    assert "Releases:      demo v2" in info and "Current:       no" in info
    assert "Built in:      1.5s" in info
    by_version = shipway_cli("slugs:info", "v2", "-a", "demo").stdout
    assert by_version.startswith(f"=== Slug {one[:12]}")
    names = shipway_cli("slugs:contents", one[:8]).stdout.splitlines()
    assert names == ["lib/", "Procfile", "app.py", "lib/util.py", "old.txt"]
    long = shipway_cli("slugs:contents", one[:8], "lib", "--long").stdout.splitlines()
    assert long == ["drwxr-xr-x          0 lib/", "-rw-r--r--          6 lib/util.py"]
    assert shipway_cli("slugs:cat", one[:8], "app.py").stdout == "print('one')\n"
    assert shipway_cli("slugs:cat", one[:8], "/app/lib/util.py").stdout == "X = 1\n"
    missing = shipway_cli("slugs:cat", one[:8], "nope.py", check_rc=1)
    assert missing.stderr == f" !    No file nope.py in slug {one[:12]}.\n"


def test_slugs_diff_shows_what_a_rollback_would_change(api_platform: ApiPlatform) -> None:
    two_deploys(api_platform)
    login(api_platform, who=ADMIN)
    diff = shipway_cli("slugs:diff", "v3", "v2", "-a", "demo").stdout.splitlines()
    assert diff[1:] == ["A  old.txt", "D  new.txt", "M  app.py", "1 added, 1 removed, 1 changed"]
    doc = json.loads(shipway_cli("slugs:diff", "v2", "v3", "-a", "demo", "--json").stdout)
    assert [e["path"] for e in valid(doc, "slug-diff")["added"]] == ["new.txt"]
    same = shipway_cli("slugs:diff", "v2", "v2", "-a", "demo").stdout
    assert same.endswith("No changes.\n")
    needs_app = shipway_cli("slugs:diff", "v2", "v3", check_rc=2)
    assert "give its app with -a APP" in needs_app.stderr


def test_ambiguous_and_unknown_slug_ids(api_platform: ApiPlatform) -> None:
    layout = api_platform.layout
    made = [add_slug(layout, "demo", {"n.txt": str(i)}) for i in range(40)]
    first = {}
    for slug in made:
        first.setdefault(slug.id[0], []).append(slug.id)
    shared = next(ids for ids in first.values() if len(ids) > 1)
    login(api_platform, who=ADMIN)
    ambiguous = shipway_cli("slugs:info", shared[0][0], check_rc=1)
    assert ambiguous.stderr.startswith(f" !    Slug id '{shared[0][0]}' is ambiguous: it matches ")
    assert shared[0][:12] in ambiguous.stderr and shared[1][:12] in ambiguous.stderr
    unknown = shipway_cli("slugs:info", "zzzz", check_rc=1)
    assert unknown.stderr == " !    No slug matches 'zzzz'.\n"


def test_download_then_verify_finds_a_tampered_slug(api_platform: ApiPlatform,
                                                    tmp_path: Path) -> None:
    one, two = two_deploys(api_platform)
    login(api_platform, who=ADMIN)
    target = tmp_path / "one.tar.gz"
    got = shipway_cli("slugs:download", one[:8], "-o", str(target))
    assert got.stdout.startswith(f"Downloading slug {one[:12]} to {target}... done")
    with tarfile.open(target, "r:gz") as tar:
        assert "app/app.py" in tar.getnames()
    assert shipway_cli("slugs:verify").stdout.endswith("2 slugs verified.\n")
    tarball = SlugArchive(api_platform.layout).tarball(two)
    tarball.write_bytes(tarball.read_bytes() + b"tampered")
    result = shipway_cli("slugs:verify", check_rc=1)
    assert f"{one[:12]}  ok  checksum ok" in result.stdout
    assert f"{two[:12]}  CORRUPT  Slug {two[:12]} is corrupt" in result.stdout
    assert result.stderr == " !    1 of 2 slugs failed verification.\n"
    assert shipway_cli("slugs:verify", one[:8]).stdout.endswith("1 slugs verified.\n")
    try:
        SlugArchive(api_platform.layout).verify(two)  # what launch checks before unpacking
    except SlugCorrupt as exc:
        assert "is corrupt" in exc.message
    else:
        raise AssertionError("a tampered slug passed verification")


def test_prune_is_a_dry_run_unless_forced(api_platform: ApiPlatform) -> None:
    layout = api_platform.layout
    ids = []
    for n in range(4):
        slug = add_slug(layout, "demo", {"app.py": f"print({n})\n"})
        deployed(layout, "demo", slug)
        ids.append(slug.id)
    create_app(layout, "other", OTHER)
    orphan = add_slug(layout, "other", {"x": "never released\n"})
    fresh = add_slug(layout, "other", {"y": "being built now\n"},
                     created_at="2999-01-01T00:00:00Z")
    login(api_platform, who=ADMIN)
    dry = shipway_cli("slugs:prune", "--keep", "2").stdout.splitlines()
    gone = {ids[0][:12], ids[1][:12], orphan.id[:12]}
    assert {line.split()[2] for line in dry if line.startswith("Would remove ")
            and "slugs (" not in line} == gone
    assert dry[-2].startswith("Would remove 3 slugs (")
    assert dry[-1] == "This was a dry run: run slugs:prune --force to delete them."
    assert len(SlugArchive(layout).ids()) == 6
    explicit = shipway_cli("slugs:prune", "--keep", "2", "--dry-run").stdout
    assert "Would remove 3 slugs" in explicit
    done = shipway_cli("slugs:prune", "--keep", "2", "--force").stdout
    assert "Removed 3 slugs" in done
    assert set(SlugArchive(layout).ids()) == {ids[2], ids[3], fresh.id}
    # a pruned slug's release says so and cannot be rolled back to
    v2 = api_platform.get("/api/apps/demo/releases/2").json()
    assert v2["slug_pruned"] is True
    refused = api_platform.request("POST", "/api/apps/demo/releases", json={"release": 2})
    assert refused.status_code == 409
    assert refused.json()["message"] == \
        f"Cannot roll back to v2: its slug {ids[0][:12]} was pruned."
    store = ReleaseStore(layout)
    assert rollback_target(store, layout, "demo", 4).version == 4
