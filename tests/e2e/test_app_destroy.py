"""``apps:destroy`` takes everything of the app with it: dynos, slugs and their volumes, its
network, route, repository and build cache (add-ons are deprovisioned as ``addons:destroy``
does). Another app is untouched.

Real server, real ``git push``, the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from builder.slug import SlugArchive
from shipway import nginx
from shipway.addons.redis import network_name
from tests.e2e.hostile import Hostile, hostile, work_tree  # noqa: F401

WEB = "python3 -m http.server $PORT"


def shipway(hostile: Hostile, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    env = {**os.environ, "SHIPWAY_USER": "dev@example.com"}
    return subprocess.run([sys.executable, "-m", "shipway.cli", "--home",
                           str(hostile.layout.home), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def everything_of(hostile: Hostile, app: str, docker_client: Any,  # noqa: F811
                  slugs: set[str]) -> dict[str, Any]:
    home = str(hostile.layout.home)
    return {
        "containers": [c.name for c in docker_client.containers.list(
            all=True, filters={"label": [f"shipway.app={app}", f"shipway.home={home}"]})],
        "volumes": [v.name for slug in sorted(slugs) for v in docker_client.volumes.list(
            filters={"label": [f"shipway.slug={slug}", f"shipway.home={home}"]})],
        "network": [n.name for n in docker_client.networks.list(
            names=[network_name(home, app)])],
        "slugs": sorted(slug for slug in slugs if SlugArchive(hostile.layout).exists(slug)),
        "app folder": hostile.layout.app_dir(app).exists(),
        "add-on data": (hostile.layout.addons_dir / app).exists(),
        "router file": nginx.app_conf(hostile.layout, app).exists(),
    }


def test_apps_destroy_removes_dynos_addons_slugs_volumes_network_and_route(
        hostile: Hostile, docker_client: Any, tmp_path: Path) -> None:  # noqa: F811
    app = hostile.new_app(tmp_path / "a", 'echo "$RANDOM$$" > "$1/stamp"', web=WEB)
    kept = hostile.new_app(tmp_path / "b", 'echo "$RANDOM$$" > "$1/stamp"', web=WEB)
    for name, folder in ((app, "wa"), (kept, "wb")):
        pushed = hostile.push(name, work_tree(tmp_path / folder))
        assert pushed.returncode == 0, pushed.stderr
    slugs = {s.id for s in SlugArchive(hostile.layout).all() if s.app == app}
    kept_slugs = {s.id for s in SlugArchive(hostile.layout).all() if s.app == kept}
    before = everything_of(hostile, app, docker_client, slugs)
    assert len(before["containers"]) == 1 and before["volumes"]
    assert before["slugs"] and before["router file"] and before["app folder"]
    kept_before = everything_of(hostile, kept, docker_client, kept_slugs)

    refused = shipway(hostile, "apps:destroy", "-a", app)
    assert refused.returncode == 2 and f"--confirm {app}" in refused.stderr
    destroyed = shipway(hostile, "apps:destroy", "-a", app, "--confirm", app)
    assert destroyed.returncode == 0, destroyed.stderr

    assert everything_of(hostile, app, docker_client, slugs) == {
        "containers": [], "volumes": [], "network": [], "slugs": [], "app folder": False,
        "add-on data": False, "router file": False}
    assert everything_of(hostile, kept, docker_client, kept_slugs) == kept_before
    gone = shipway(hostile, "apps:info", "-a", app)
    assert gone.returncode == 1 and gone.stderr == f" !    Couldn't find that app: {app}.\n"
