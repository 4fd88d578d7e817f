"""Fixtures for the API and remote CLI tests (no tests here): a real server with the API on
port 0, a developer and an admin with tokens, the ``shipway`` CLI as a subprocess, and slugs
made by hand with ``SlugArchive.add``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from builder.slug import Slug, SlugArchive
from release.records import Release
from release.store import ReleaseStore
from release.testing import slug_tarball
from shipway.accounts import Accounts
from shipway.api import make_api
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.openapi import SCHEMAS, check
from shipway.server import RunningServer, start
from shipway.settings import Settings

DEV = "dev@example.com"
ADMIN = "admin@example.com"
OTHER = "other@example.com"
OLD = "2020-01-01T00:00:00Z"


class NoDocker:
    """A Docker client for routes that need none; using it fails the test loudly."""

    def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"this test must not use Docker (it used .{name})")


@dataclass
class ApiPlatform:
    layout: Layout
    server: RunningServer
    dev_token: str
    admin_token: str
    other_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def get(self, path: str, who: str = DEV, **kw: Any) -> requests.Response:
        return self.request("GET", path, who, **kw)

    def request(self, method: str, path: str, who: str = DEV, **kw: Any) -> requests.Response:
        token = {DEV: self.dev_token, ADMIN: self.admin_token, OTHER: self.other_token}[who]
        return requests.request(method, self.url + path, auth=(who, token), timeout=30, **kw)


@pytest.fixture(name="api_platform")
def api_platform_fixture(layout: Layout) -> Iterator[ApiPlatform]:
    settings = Settings(port=0, router_port=8080)
    server = start(layout, settings, api=make_api(layout, settings, docker_factory=NoDocker))
    accounts = Accounts(layout)
    _, dev = accounts.create_token(DEV)
    _, admin = accounts.create_token(ADMIN, admin=True)
    _, other = accounts.create_token(OTHER)
    create_app(layout, "demo", DEV)
    yield ApiPlatform(layout, server, dev, admin, other)
    server.stop()


def valid(doc: Any, schema: str) -> Any:
    """Assert ``doc`` matches the named schema of the OpenAPI document; returns it."""
    problems = check(doc, SCHEMAS[schema], schema)
    assert not problems, problems
    return doc


def add_slug(layout: Layout, app: str, files: Mapping[str, str], *, created_at: str = OLD,
             process_types: Mapping[str, str] | None = None) -> Slug:
    """A slug made by hand, as release.testing makes them."""
    layout.slugs_dir.mkdir(parents=True, exist_ok=True)
    tarball = slug_tarball(files, layout.slugs_dir / f"incoming-{app}.tar.gz")
    return SlugArchive(layout).add(
        tarball, app=app, commit="c0ffee" * 6 + "abcd", created_at=created_at,
        stack="shipway/stack", buildpack="test",
        process_types=dict(process_types or {"web": "python3 app.py"}),
        build_duration=1.5, build_key="",
    )


def deployed(layout: Layout, app: str, slug: Slug, description: str = "") -> Release:
    """A succeeded, launched release of ``slug`` (as a deploy would leave it)."""
    store = ReleaseStore(layout)
    return store.create(app, description=description or f"Deploy {slug.commit[:7]}", user=DEV,
                        status="succeeded", slug=slug.id, commit=slug.commit, launched=True,
                        config=dict(store.latest(app).config) if store.latest(app) else {})


def shipway_cli(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                input: str | None = None, check_rc: int | None = 0
                ) -> subprocess.CompletedProcess[str]:
    """Run the real ``shipway`` command, as a user would in a terminal."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "shipway.cli", *args], cwd=cwd,
                            env=full_env, input=input, capture_output=True, text=True,
                            timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    if check_rc is not None:
        assert result.returncode == check_rc, (result.returncode, result.stdout, result.stderr)
    return result


def login(platform: ApiPlatform, who: str = DEV) -> subprocess.CompletedProcess[str]:
    token = {DEV: platform.dev_token, ADMIN: platform.admin_token,
             OTHER: platform.other_token}[who]
    return shipway_cli("login", "--server", platform.url, "--email", who, "--token", token)
