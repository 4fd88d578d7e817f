"""Stopping a dyno: SIGTERM first; a process that ignores it is killed (SIGKILL, status 137)
once ``launch.stop_grace`` has passed, not before and not much later.

Real server, real ``git push``, real dynos; what the user sees is the app's ``shipway`` log lines.
"""

from __future__ import annotations

import time
from pathlib import Path

from release.dynolog import shipway_log
from tests.conftest import run_git
from tests.e2e.hostile import Hostile, hostile, work_tree  # noqa: F401

STUBBORN = """import http.server, os, signal, sys
def ignore(signum, frame):
    print("got SIGTERM, ignoring it", flush=True)
signal.signal(signal.SIGTERM, ignore)
http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(os.environ["PORT"]),
                 bind="0.0.0.0")
"""


def stamp(line: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def test_a_dyno_ignoring_sigterm_is_killed_after_stop_grace(
        hostile: Hostile, tmp_path: Path) -> None:  # noqa: F811
    app = hostile.new_app(tmp_path, "true")
    work = work_tree(tmp_path / "work", {"Procfile": "web: python3 stubborn.py\n",
                                         "stubborn.py": STUBBORN})
    assert "Launching... done, v2" in hostile.push(app, work).stderr
    run_git("commit", "-q", "--allow-empty", "-m", "again", cwd=work)
    assert "Launching... done, v3" in hostile.push(app, work).stderr
    log = shipway_log(hostile.layout, app)
    deadline = time.monotonic() + 30
    while "Process exited with status 137" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    lines = log.read_text().splitlines()
    stopping = next(line for line in lines if "Stopping all processes with SIGTERM" in line)
    killed = next(line for line in lines if "Process exited with status 137" in line)
    grace = stamp(killed) - stamp(stopping)
    assert hostile.settings.launch_stop_grace <= grace < hostile.settings.launch_stop_grace + 2
