"""Deploy, config change, second deploy and rollback, watched through the router."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from release.config import set_config
from release.deploy import deploy
from release.dynos import processes
from release.rollback import rollback
from release.store import ReleaseStore
from release.testing import (
    Poller,
    RecordedOutput,
    fetch,
    make_slug,
    remove_containers,
    web_app_files,
)
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.router import Router
from shipway.settings import Settings

USER = "dev@example.com"


@pytest.fixture
def app_name(docker_client: Any, stack_image: str) -> Iterator[str]:
    name = f"launch-{secrets.token_hex(3)}"
    yield name
    remove_containers(docker_client, name)


@pytest.fixture
def settings() -> Settings:
    return Settings(router_port=0, launch_boot_timeout=30.0, launch_stop_grace=5.0)


def test_deploy_config_deploy_rollback_without_a_failed_request(
    layout: Layout, settings: Settings, app_name: str, docker_client: Any
) -> None:
    create_app(layout, app_name, USER)
    router = Router(layout, settings).start()
    store = ReleaseStore(layout)
    try:
        slug_a = make_slug(layout, app_name, web_app_files("A"), {"web": "python3 app.py"})
        out = RecordedOutput()
        v2 = deploy(layout, settings, app=app_name, slug=slug_a, user=USER, commit="a" * 40,
                    commit_description="first", output_path=None, out=out, docker=docker_client)
        assert v2.status == "succeeded", out.text
        assert out.lines[-2:] == [
            "-----> Launching... done, v2",
            f"       http://{app_name}.localhost:0/ deployed to Shipway",
        ]
        assert fetch(router.port, app_name) == (200, "A v2 web.1 profile=yes greeting=")
        volume_a = docker_client.volumes.get(f"shipway-slug-{slug_a.id[:12]}")
        assert volume_a.attrs["Labels"]["shipway.slug"] == slug_a.id

        with Poller(router.port, app_name) as poller:
            v3 = set_config(layout, settings, app=app_name, changes={"GREETING": "hello"},
                            user=USER, out=RecordedOutput(), docker=docker_client)
            assert (v3.version, v3.description) == (3, "Set GREETING config vars")
            assert fetch(router.port, app_name) == (200, "A v3 web.1 profile=yes greeting=hello")

            slug_b = make_slug(layout, app_name, web_app_files("B"), {"web": "python3 app.py"})
            v4 = deploy(layout, settings, app=app_name, slug=slug_b, user=USER,
                        commit="b" * 40, commit_description="second", output_path=None,
                        out=RecordedOutput(), docker=docker_client)
            assert (v4.status, v4.description) == ("succeeded", "Deploy bbbbbbb")
            assert fetch(router.port, app_name) == (200, "B v4 web.1 profile=yes greeting=hello")

            out = RecordedOutput()
            v5 = rollback(layout, settings, app=app_name, version=2, user=USER, out=out,
                          docker=docker_client)
            assert (v5.status, v5.description) == ("succeeded", "Rollback to v2")
            assert "Rolled back to v2" in out.lines
            assert fetch(router.port, app_name) == (200, "A v5 web.1 profile=yes greeting=")
            time.sleep(0.5)
        assert poller.errors == []
        seen = {answer.split(" web.1")[0] for answer in poller.answers}
        assert {"A v2", "A v3", "B v4", "A v5"} <= seen
        assert store.current(app_name) == store.get(app_name, 5)
        assert store.get(app_name, 5).config == store.get(app_name, 2).config
        # the old releases' dynos are stopped in the background
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if [d.release for d in processes(layout, app=app_name, docker=docker_client)] == [5]:
                break
            time.sleep(0.5)
        assert [d.release for d in processes(layout, app=app_name, docker=docker_client)] == [5]
        # slug A was unpacked once: the config change and the rollback mounted the same volume
        again = docker_client.volumes.get(f"shipway-slug-{slug_a.id[:12]}")
        assert again.attrs["CreatedAt"] == volume_a.attrs["CreatedAt"]
        # two slugs, two volumes: rollback and config changes reused them
        names = {v.name for v in docker_client.volumes.list(filters={"label": "shipway.slug"})}
        assert {f"shipway-slug-{slug_a.id[:12]}", f"shipway-slug-{slug_b.id[:12]}"} <= names
    finally:
        router.stop()
