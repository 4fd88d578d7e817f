"""The Platform API over real HTTP: auth, access rules, bad input, releases, config, output."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from release.store import ReleaseStore
from shipway.accounts import Accounts
from shipway.apps import create_app
from tests.integration.test_api_support import (  # noqa: F401 - fixtures
    ADMIN,
    DEV,
    OTHER,
    ApiPlatform,
    add_slug,
    api_platform_fixture,
    deployed,
    valid,
)


def test_account_is_whoami_with_basic_or_bearer(api_platform: ApiPlatform) -> None:
    basic = api_platform.get("/api/account")
    assert basic.status_code == 200
    assert valid(basic.json(), "account") == {"id": DEV, "email": DEV, "admin": False}
    bearer = requests.get(api_platform.url + "/api/account", timeout=10,
                          headers={"Authorization": f"Bearer {api_platform.admin_token}"})
    assert bearer.json()["email"] == ADMIN and bearer.json()["admin"] is True


def test_unauthenticated_requests_get_401_and_learn_nothing(api_platform: ApiPlatform) -> None:
    for path in ("/api/account", "/api/apps", "/api/apps/demo", "/api/apps/demo/config-vars"):
        anonymous = requests.get(api_platform.url + path, timeout=10)
        assert anonymous.status_code == 401
        assert valid(anonymous.json(), "error")["id"] == "unauthorized"
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert "demo" not in anonymous.text
    wrong = requests.get(api_platform.url + "/api/apps", auth=(DEV, "shp_wrong"), timeout=10)
    assert wrong.status_code == 401
    assert wrong.json() == {"id": "unauthorized", "message": "Invalid credentials provided."}


def test_another_users_app_is_not_found_and_not_listed(api_platform: ApiPlatform) -> None:
    before = api_platform.get("/api/apps/demo/config-vars").json()
    api_platform.request("PATCH", "/api/apps/demo/config-vars", json={"SECRET": "s3cr3t"})
    assert api_platform.get("/api/apps", who=OTHER).json() == []
    for method, path in (("GET", "/api/apps/demo"), ("GET", "/api/apps/demo/config-vars"),
                         ("GET", "/api/apps/demo/releases"), ("DELETE", "/api/apps/demo"),
                         ("PATCH", "/api/apps/demo/config-vars")):
        denied = api_platform.request(method, path, who=OTHER, json={"SECRET": None})
        missing = api_platform.request(method, path.replace("demo", "nope"), who=OTHER,
                                       json={"SECRET": None})
        # the same answer as for an app that does not exist: names are not disclosed
        assert denied.status_code == missing.status_code == 404, (method, path)
        assert denied.json() == {"id": "not_found", "message": "Couldn't find that app: demo."}
        assert missing.json() == {"id": "not_found", "message": "Couldn't find that app: nope."}
        assert "s3cr3t" not in denied.text
    assert before == {}
    assert api_platform.get("/api/apps/demo/config-vars").json() == {"SECRET": "s3cr3t"}
    assert api_platform.get("/api/apps/demo", who=ADMIN).status_code == 200


def test_collaborator_may_use_the_app_but_not_destroy_it(api_platform: ApiPlatform) -> None:
    Accounts(api_platform.layout).add_collaborator("demo", OTHER)
    assert [a["name"] for a in api_platform.get("/api/apps", who=OTHER).json()] == ["demo"]
    refused = api_platform.request("DELETE", "/api/apps/demo", who=OTHER)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Only the owner of demo can destroy it."
    assert api_platform.layout.app_file("demo").exists()


def test_create_show_and_destroy_an_app(api_platform: ApiPlatform) -> None:
    created = api_platform.request("POST", "/api/apps", json={"name": "hello"})
    assert created.status_code == 201
    app = valid(created.json(), "app")
    assert app["owner"] == {"email": DEV}
    assert app["web_url"] == "http://hello.localhost:8080/"
    assert app["git_url"] == f"{api_platform.url}/hello.git"
    taken = api_platform.request("POST", "/api/apps", json={"name": "hello"})
    assert taken.status_code == 409 and taken.json()["message"] == "Name hello is already taken."
    generated = valid(api_platform.request("POST", "/api/apps", json={}).json(), "app")
    adjective, noun, number = generated["name"].split("-")
    assert adjective.isalpha() and noun.isalpha() and number.isdigit()
    gone = api_platform.request("DELETE", "/api/apps/hello")
    assert gone.status_code == 200 and gone.json()["name"] == "hello"
    assert api_platform.get("/api/apps/hello").status_code == 404
    assert not api_platform.layout.app_dir("hello").exists()


def test_malformed_json_unknown_fields_and_huge_bodies(api_platform: ApiPlatform) -> None:
    broken = api_platform.request("POST", "/api/apps", data=b'{"name": ',
                                  headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["id"] == "bad_request"
    assert broken.json()["message"].startswith("Request body is not valid JSON")
    unknown = api_platform.request("POST", "/api/apps", json={"nmae": "typo"})
    assert unknown.status_code == 422
    assert unknown.json() == {"id": "invalid_params",
                              "message": "Invalid request: unknown field body.nmae."}
    wrong_type = api_platform.request("PATCH", "/api/apps/demo/config-vars", json={"A": 1})
    assert wrong_type.status_code == 422
    assert "body.A must be string or null" in wrong_type.json()["message"]
    not_object = api_platform.request("PATCH", "/api/apps/demo/formation", json=[1])
    assert not_object.status_code == 422 and "body must be object" in not_object.text
    huge = api_platform.request("PATCH", "/api/apps/demo/config-vars",
                                data=b'{"A": "' + b"x" * (2 << 20) + b'"}')
    assert huge.status_code == 413 and huge.json()["id"] == "payload_too_large"
    bad_key = api_platform.request("PATCH", "/api/apps/demo/config-vars", json={"1X": "y"})
    assert bad_key.status_code == 422 and "Invalid config var name '1X'" in bad_key.text
    assert [r["version"] for r in api_platform.get("/api/apps/demo/releases").json()] == [1]


def test_unknown_paths_methods_versions_and_apps(api_platform: ApiPlatform) -> None:
    assert api_platform.get("/api/nothing").json()["id"] == "not_found"
    wrong_method = api_platform.request("PUT", "/api/apps")
    assert wrong_method.status_code == 405 and "use GET, POST" in wrong_method.json()["message"]
    missing = api_platform.get("/api/apps/demo/releases/v99")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Release v99 not found for demo."
    assert api_platform.get("/api/apps/demo/releases/latest").status_code == 422
    assert api_platform.get("/api/apps/nope/releases").status_code == 404
    invalid = api_platform.get("/api/apps/Bad_Name")
    assert invalid.status_code == 422 and invalid.json()["id"] == "invalid_params"


def test_config_vars_patch_sets_and_null_unsets(api_platform: ApiPlatform) -> None:
    first = api_platform.request("PATCH", "/api/apps/demo/config-vars",
                                 json={"GREETING": "hi", "LANG": "en"})
    assert valid(first.json(), "config-vars") == {"GREETING": "hi", "LANG": "en"}
    assert first.headers["Shipway-Release"] == "2"
    second = api_platform.request("PATCH", "/api/apps/demo/config-vars", json={"LANG": None})
    assert second.json() == {"GREETING": "hi"}
    releases = api_platform.get("/api/apps/demo/releases").json()
    assert [r["description"] for r in releases] == [
        "Initial release", "Set GREETING, LANG config vars", "Remove LANG config vars"]
    info = valid(api_platform.get("/api/apps/demo/releases/v3").json(), "release")
    assert info["config_vars"] == {"GREETING": "hi"} and info["current"] is True


def test_releases_paging_by_limit_and_range(api_platform: ApiPlatform) -> None:
    for n in range(6):
        api_platform.request("PATCH", "/api/apps/demo/config-vars", json={"N": str(n)})
    all_ = api_platform.get("/api/apps/demo/releases").json()
    assert [r["version"] for r in all_] == [1, 2, 3, 4, 5, 6, 7]
    for doc in all_:
        valid(doc, "release")
    last = api_platform.get("/api/apps/demo/releases", params={"limit": 2}).json()
    assert [r["version"] for r in last] == [6, 7]
    page = api_platform.get("/api/apps/demo/releases",
                            headers={"Range": "version ..; max=3, order=desc"})
    assert page.status_code == 206
    assert [r["version"] for r in page.json()] == [7, 6, 5]
    assert page.headers["Next-Range"] == "version 4..; max=3, order=desc"
    bad = api_platform.get("/api/apps/demo/releases", headers={"Range": "id 1..2"})
    assert bad.status_code == 422


def test_release_output_streams_while_the_release_is_pending(api_platform: ApiPlatform) -> None:
    layout = api_platform.layout
    log = layout.logs_dir / "demo" / "v2.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("-----> Building\n")
    store = ReleaseStore(layout)
    pending = store.create("demo", description="Deploy abc1234", user=DEV, output=str(log))
    seen: list[str] = []
    started = time.monotonic()

    def read() -> None:
        with api_platform.get("/api/apps/demo/releases/2/output", stream=True) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                seen.append(line.decode())

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == ["-----> Building"]  # streamed before the release finished
    with log.open("a") as fh:
        fh.write("-----> Launching... done, v2\n")
    store.finish(pending, "succeeded", launched=True)
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert seen == ["-----> Building", "-----> Launching... done, v2"]
    assert time.monotonic() - started < 10
    none = api_platform.get("/api/apps/demo/releases/1/output")
    assert none.status_code == 404 and "has no output" in none.json()["message"]


def test_app_slug_route_only_shows_the_apps_own_slugs(api_platform: ApiPlatform) -> None:
    layout = api_platform.layout
    create_app(layout, "theirs", OTHER)
    mine = add_slug(layout, "demo", {"app.py": "print(1)\n"})
    deployed(layout, "demo", mine)
    theirs = add_slug(layout, "theirs", {"app.py": "print(2)\n"})
    deployed(layout, "theirs", theirs)
    shown = api_platform.get(f"/api/apps/demo/slugs/{mine.id[:10]}")
    assert valid(shown.json(), "slug")["id"] == mine.id
    assert shown.json()["process_types"] == {"web": "python3 app.py"}
    assert api_platform.get("/api/apps/demo/slugs/v2").json()["id"] == mine.id
    hidden = api_platform.get(f"/api/apps/demo/slugs/{theirs.id}")
    assert hidden.status_code == 404 and "theirs" not in hidden.text
    admin_only = api_platform.get("/api/slugs")
    assert admin_only.status_code == 403 and admin_only.json()["id"] == "forbidden"


def test_formation_and_dynos_without_a_deploy(api_platform: ApiPlatform) -> None:
    assert api_platform.get("/api/apps/demo/formation").json() == []
    scale: Any = api_platform.request("PATCH", "/api/apps/demo/formation",
                                      json={"updates": [{"type": "web", "quantity": 2}]})
    assert scale.status_code == 409
    assert scale.json()["message"] == "demo has no deployed code yet: push to deploy first."
    unknown = api_platform.request("PATCH", "/api/apps/demo/formation",
                                   json={"updates": [{"type": "web", "size": 2}]})
    assert unknown.status_code == 422 and "unknown field body.updates[0].size" in unknown.text
