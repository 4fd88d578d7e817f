"""A web process that binds its port, takes traffic, then crashes within ``launch.settle``:
traffic goes back to the previous release, the release is failed with the dyno's last lines,
and the push says so instead of "done".

Real server, real ``git push``, real dynos, requests through the real router (nginx).
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from release.store import ReleaseStore
from tests.conftest import run_git
from tests.e2e.hostile import Hostile, hostile, work_tree  # noqa: F401

CRASH = """import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(os.environ["PORT"])))
s.listen()
print("bound, about to crash", flush=True)
time.sleep(0.8)
sys.exit("boom: the database is gone")
"""


def test_a_web_dyno_that_crashes_after_the_switch_sends_traffic_back(
        hostile: Hostile, tmp_path: Path) -> None:  # noqa: F811
    app = hostile.new_app(tmp_path, "true")
    work = work_tree(tmp_path / "work", {"Procfile": "web: python3 -m http.server $PORT\n",
                                         "crash.py": CRASH})
    first = hostile.push(app, work)
    assert "Launching... done, v2" in first.stderr, first.stderr
    (work / "Procfile").write_text("web: python3 crash.py\n")
    run_git("commit", "-qam", "crashes after binding", cwd=work)

    pushed = hostile.push(app, work)
    answered = requests.get(f"http://127.0.0.1:{hostile.settings.router_port}/",
                            headers={"Host": f"{app}.localhost"}, timeout=10)
    assert "Launching... done" not in pushed.stderr
    assert ("remote:  !     v3 failed to start: web exited with status 1 within 2 seconds of "
            "the switch (last log lines below); still running v2") in pushed.stderr
    assert "remote: app[web.1]: boom: the database is gone" in pushed.stderr
    assert answered.status_code == 200  # v2's dyno, still serving
    releases = ReleaseStore(hostile.layout)
    v3 = releases.get(app, 3)
    assert v3.status == "failed" and "within 2 seconds of the switch" in v3.failure
    current = releases.current(app)
    assert current is not None and current.version == 2


def test_traffic_is_back_on_the_previous_release_within_two_seconds(
        hostile: Hostile, tmp_path: Path) -> None:  # noqa: F811
    app = hostile.new_app(tmp_path, "true")
    work = work_tree(tmp_path / "work", {"Procfile": "web: python3 -m http.server $PORT\n",
                                         "crash.py": CRASH})
    assert "Launching... done, v2" in hostile.push(app, work).stderr
    (work / "Procfile").write_text("web: python3 crash.py\n")
    run_git("commit", "-qam", "crashes after binding", cwd=work)
    import subprocess

    push = subprocess.Popen(["git", "push", hostile.remote(app), "master"], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # each request by the time it started: the longest run of failures is the time down
    url, host = f"http://127.0.0.1:{hostile.settings.router_port}/", {"Host": f"{app}.localhost"}
    samples: list[tuple[float, bool]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            ok = requests.get(url, headers=host, timeout=1).status_code == 200
        except requests.RequestException:
            ok = False
        samples.append((started, ok))
        if push.poll() is not None and ok:
            break
        time.sleep(0.05)
    push.wait(timeout=60)
    assert samples[-1][1], "the app stayed down after the push"
    worst, bad_since = 0.0, None
    for started, ok in samples:
        if not ok and bad_since is None:
            bad_since = started
        elif ok and bad_since is not None:
            worst, bad_since = max(worst, started - bad_since), None
    assert worst < 2.0, worst
