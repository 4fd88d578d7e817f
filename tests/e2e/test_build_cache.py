"""``builds:cache:purge``: the next build of the app starts cold (real builds in Docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipway.accounts import App
from shipway.apps import create_app
from shipway.layout import Layout
from tests.e2e.conftest import example_files
from tests.e2e.test_build_apps import build_example
from tests.integration.test_api_support import shipway_cli

REUSED = "-----> Dependencies unchanged; reusing the cached virtualenv ("


def test_a_purged_cache_makes_the_next_build_cold(
        tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App) -> None:
    create_app(layout, app.name, app.owner)
    files = example_files("python-requirements")
    build_example(tmp_path / "1", layout, docker_client, files, app=app)
    _, warm = build_example(tmp_path / "2", layout, docker_client, files, app=app,
                            config={"DEBUG": "1"})
    assert any(line.startswith(REUSED) for line in warm.lines)

    purged = shipway_cli("--home", str(layout.home), "builds:cache:purge", "-a", app.name)
    first, second = purged.stdout.splitlines()
    assert first.startswith(f"Purging build cache for {app.name}... done, ")
    assert int(first.split("done, ")[1].split()[0]) > 0 and second == "The next build starts cold."
    _, cold = build_example(tmp_path / "3", layout, docker_client, files, app=app,
                            config={"DEBUG": "2"})
    assert not any(line.startswith(REUSED) for line in cold.lines)
    assert "        + six==1.16.0" in cold.lines
    again = shipway_cli("--home", str(layout.home), "builds:cache:purge", "-a", app.name)
    assert int(again.stdout.split("done, ")[1].split()[0]) > 0  # the cold build cached again
