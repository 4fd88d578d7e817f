"""The API's contract without a server: routes vs the OpenAPI document, request checks,
paging, generated names, and ``~/.netrc`` editing."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from release.store import ReleaseStore
from shipway.api import ROUTES, Api, free_app_name
from shipway.apps import create_app
from shipway.client import netrc_entries, read_credentials, remove_credentials, write_credentials
from shipway.layout import Layout
from shipway.openapi import OPERATIONS, SCHEMAS, check, document
from shipway.settings import Settings


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    routed = {(r.method, r.path) for r in ROUTES}
    documented = {(method.upper(), path) for path, ops in document()["paths"].items()
                  for method in ops}
    assert routed == documented
    assert len(ROUTES) == len(OPERATIONS) == len(routed)


def test_every_schema_reference_in_the_document_resolves() -> None:
    text = json.dumps(document())
    refs = {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs and refs <= set(SCHEMAS)


def call(api: Api, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
        "HTTP_HOST": "127.0.0.1:5000", "wsgi.url_scheme": "http", **(headers or {}),
    }
    seen: list[str] = []
    chunks = api(environ, lambda status, hdrs: seen.append(status))
    return seen[0], json.loads(b"".join(chunks))


def test_the_document_is_served_without_credentials(layout: Layout) -> None:
    api = Api(layout, Settings(), docker_factory=lambda: None)
    status, doc = call(api, "GET", "/api/openapi.json")
    assert status == "200 OK" and doc == document()
    status, error = call(api, "GET", "/api/apps")
    assert status == "401 Unauthorized" and error["id"] == "unauthorized"


def test_check_names_the_field_that_is_wrong() -> None:
    assert check({"name": "ok"}, SCHEMAS["app-create"]) == []
    assert check({"name": 3}, SCHEMAS["app-create"]) == [
        "body.name must be string or null, got int"]
    assert check({"updates": [{"type": "web", "quantity": True}]},
                 SCHEMAS["formation-update"]) == [
        "body.updates[0].quantity must be integer, got bool"]
    assert check({}, SCHEMAS["formation-update"]) == ["body.updates is required"]
    assert check({"keep": 1, "force": True}, SCHEMAS["slug-prune-request"]) == [
        "unknown field body.force"]


def test_range_paging_over_releases(layout: Layout) -> None:
    from shipway.api import _paged

    create_app(layout, "demo", "dev@example.com")
    store = ReleaseStore(layout)
    for n in range(4):
        store.create("demo", description=f"r{n}", user="dev@example.com", status="succeeded")
    releases = store.list("demo")
    page, status, headers = _paged(releases, "version 2..; max=2")
    assert [r.version for r in page] == [2, 3] and status == 206
    assert dict(headers) == {"Content-Range": "version 2..3", "Next-Range": "version 4..; max=2"}
    page, status, _ = _paged(releases, "version 4..5")
    assert [r.version for r in page] == [4, 5] and status == 200
    with pytest.raises(Exception, match="Range max must be between 1 and 1000"):
        _paged(releases, "version ..; max=0")


def test_generated_names_are_valid_and_free(layout: Layout) -> None:
    rng = random.Random(7)
    name = free_app_name(layout, rng)
    create_app(layout, name, "dev@example.com")
    assert free_app_name(layout, random.Random(7)) != name


def test_netrc_edits_keep_other_entries_byte_for_byte(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(path))
    original = ("# my hosts\nmachine example.org login a password b\n"
                "macdef init\ncd /pub\n\n"
                "machine 127.0.0.1\n\tlogin old@example.com\n\tpassword shp_old\n"
                "machine git.example.com login me password keep\n")
    path.write_text(original)
    write_credentials("127.0.0.1", "dev@example.com", "shp_new")
    text = path.read_text()
    assert "shp_old" not in text
    assert read_credentials("127.0.0.1") == ("dev@example.com", "shp_new")
    assert read_credentials("git.example.com") == ("me", "keep")
    assert [e.host for e in netrc_entries(text)] == ["example.org", "git.example.com",
                                                     "127.0.0.1"]
    assert "macdef init\ncd /pub\n\n" in text
    assert remove_credentials("127.0.0.1")
    assert path.read_text() == original.replace(
        "machine 127.0.0.1\n\tlogin old@example.com\n\tpassword shp_old\n", "")
    assert not remove_credentials("127.0.0.1")
