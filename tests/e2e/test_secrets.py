"""Config values never shown or kept readable: a PEM key printed by the build and the release
command comes out ``[REDACTED]`` line by line; records and logs are Shipway's user's alone.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import requests

from release.store import ReleaseStore
from tests.e2e.hostile import DEV, Hostile, hostile, work_tree  # noqa: F401

PEM = ("-----BEGIN PRIVATE KEY-----\n"
       "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
       "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu\n"
       "-----END PRIVATE KEY-----")
TOKEN = "tok-4f9c2e8a7b"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_values_are_redacted_everywhere_and_kept_private(
        hostile: Hostile, tmp_path: Path, docker_client: Any) -> None:  # noqa: F811
    app = hostile.new_app(tmp_path, 'echo "-----> key follows"; cat "$3/PEM_KEY"; echo; '
                          'echo "       using token $(cat "$3/API_TOKEN") in mode $(cat "$3/MODE")"')
    api = f"{hostile.server.url}/api/apps/{app}"
    auth = (DEV, hostile.token)
    changed = requests.patch(f"{api}/config-vars", json={"PEM_KEY": PEM, "API_TOKEN": TOKEN,
                                                        "MODE": "prod"}, auth=auth, timeout=30)
    assert changed.status_code == 200
    work = work_tree(tmp_path / "work", {
        "Procfile": 'release: printf "%s\\n" "$PEM_KEY"; echo "release saw $API_TOKEN"\n'
                    "web: python3 -m http.server $PORT\n"})
    pushed = hostile.push(app, work)
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: -----> Launching... done, v3" in pushed.stderr
    assert "remote:        using token [REDACTED] in mode prod" in pushed.stderr
    assert "remote:        release saw [REDACTED]" in pushed.stderr
    assert pushed.stderr.count("remote: [REDACTED]") == 4  # the build printed the key's 4 lines
    assert pushed.stderr.count("remote:        [REDACTED]") >= 4  # so did the release command
    for line in [TOKEN, *PEM.splitlines()]:
        assert line not in pushed.stderr

    store = ReleaseStore(hostile.layout)
    release = store.get(app, 3)
    build_log = Path(release.output)
    kept = build_log.read_text()
    assert "using token [REDACTED] in mode prod" in kept and "release saw [REDACTED]" in kept
    shown = requests.get(f"{api}/releases/3/output", auth=auth, timeout=30).text
    for line in [TOKEN, *PEM.splitlines()]:
        assert line not in kept and line not in shown
    assert "release saw [REDACTED]" in shown

    layout = hostile.layout
    assert mode(build_log) == 0o600 and mode(build_log.parent) == 0o700
    for version in (1, 2, 3):
        assert mode(layout.releases_dir(app) / f"v{version:07d}.toml") == 0o600
    assert mode(layout.releases_dir(app)) == 0o700
    assert mode(layout.users_file) == 0o600
    assert mode(layout.home) == 0o700 and mode(layout.logs_dir) == 0o700
