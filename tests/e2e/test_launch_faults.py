"""Releases that do not start: the previous one keeps serving and the user is told why."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from builder.slug import SlugArchive
from release.deploy import deploy
from release.dynos import processes
from release.records import Release
from release.store import ReleaseStore
from release.testing import RecordedOutput, fetch, make_slug, remove_containers, web_app_files
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.router import Router
from shipway.settings import Settings

USER = "dev@example.com"
WEB = {"web": "python3 app.py"}


@dataclass
class Running:
    layout: Layout
    settings: Settings
    app: str
    router: Router
    docker: Any

    def deploy(self, files: dict[str, str], process_types: dict[str, str],
               out: RecordedOutput, *, corrupt: bool = False) -> Release:
        slug = make_slug(self.layout, self.app, files, process_types, commit="c" * 40)
        if corrupt:
            path = SlugArchive(self.layout).tarball(slug.id)
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        return deploy(self.layout, self.settings, app=self.app, slug=slug, user=USER,
                      commit="c" * 40, commit_description="broken", output_path=None,
                      out=out, docker=self.docker)

    def still_serving_v2(self) -> None:
        assert fetch(self.router.port, self.app) == (200, "A v2 web.1 profile=yes greeting=")
        assert ReleaseStore(self.layout).current(self.app) == ReleaseStore(self.layout).get(
            self.app, 2)
        assert {d.release for d in processes(self.layout, app=self.app, docker=self.docker)} == {2}


@pytest.fixture
def running(layout: Layout, docker_client: Any, stack_image: str) -> Iterator[Running]:
    """An app serving v2 (code A) through a router on a random port."""
    app = f"faults-{secrets.token_hex(3)}"
    settings = Settings(router_port=0, launch_boot_timeout=4.0, launch_stop_grace=3.0)
    create_app(layout, app, USER)
    router = Router(layout, settings).start()
    state = Running(layout, settings, app, router, docker_client)
    try:
        out = RecordedOutput()
        assert state.deploy(web_app_files("A"), WEB, out).status == "succeeded", out.text
        yield state
    finally:
        router.stop()
        remove_containers(docker_client, app)


def test_an_app_that_crashes_on_boot_fails_its_release(running: Running) -> None:
    out = RecordedOutput()
    files = {"app.py": "import sys\nprint('boom: missing DATABASE_URL', flush=True)\nsys.exit(1)\n"}
    v3 = running.deploy(files, WEB, out)
    assert (v3.version, v3.status, v3.failure) == (3, "failed", "web exited with status 1")
    assert out.lines[0] == (
        " !     v3 failed to start: web exited with status 1 (last log lines below); "
        "still running v2"
    )
    assert "app[web.1]: boom: missing DATABASE_URL" in out.lines
    running.still_serving_v2()


def test_an_app_that_never_binds_port_fails_after_the_boot_timeout(running: Running) -> None:
    out = RecordedOutput()
    files = {"app.py": "import time\nprint('thinking', flush=True)\ntime.sleep(600)\n"}
    v3 = running.deploy(files, WEB, out)
    assert v3.status == "failed"
    assert v3.failure == "web failed to bind to $PORT within 4 seconds of launch"
    assert out.lines[0].startswith(" !     v3 failed to start: web failed to bind to $PORT")
    assert out.lines[0].endswith("; still running v2")
    assert "app[web.1]: thinking" in out.lines
    running.still_serving_v2()


def test_a_failing_release_phase_switches_nothing(running: Running) -> None:
    out = RecordedOutput()
    types = {**WEB, "release": "echo migrating; echo no database >&2; exit 3"}
    v3 = running.deploy(web_app_files("B"), types, out)
    assert (v3.status, v3.failure) == ("failed", "release command failed with status 3")
    assert out.lines[0] == "-----> Running release command..."
    assert sorted(out.lines[1:3]) == ["       migrating", "       no database"]
    assert out.lines[3] == (
        " !     v3 failed to start: release command failed with status 3; still running v2"
    )
    running.still_serving_v2()


def test_a_release_phase_that_succeeds_runs_before_the_web_dynos(running: Running) -> None:
    out = RecordedOutput()
    types = {**WEB, "release": 'echo "migrating for $SHIPWAY_RELEASE with $DYNO"'}
    v3 = running.deploy(web_app_files("B"), types, out)
    assert v3.status == "succeeded", out.text
    assert "       migrating for v3 with release.1" in out.lines
    assert fetch(running.router.port, running.app)[1].startswith("B v3 web.1")


def test_a_corrupt_slug_is_refused_before_it_is_unpacked(running: Running) -> None:
    out = RecordedOutput()
    v3 = running.deploy(web_app_files("C"), WEB, out, corrupt=True)
    assert v3.status == "failed"
    assert "is corrupt: its checksum is now" in v3.failure
    assert out.lines[0].startswith(" !     v3 failed to start: Slug ")
    running.still_serving_v2()


def test_a_hung_release_phase_is_stopped_and_fails_the_release(running: Running) -> None:
    running.settings = running.settings.with_overrides(build_timeout=3.0)
    out = RecordedOutput()
    v3 = running.deploy(web_app_files("B"), {**WEB, "release": "echo waiting; sleep 600"}, out)
    assert (v3.status, v3.failure) == (
        "failed", "release command did not finish within 3 seconds")
    running.still_serving_v2()
