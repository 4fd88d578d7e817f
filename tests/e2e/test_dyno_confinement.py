"""Dynos are confined: no capabilities, no-new-privileges, CPU, memory (no extra swap) and pids
limits, a read-only root apart from /tmp; the router still reaches them.

Real server, real ``git push``, real dynos; probes run inside the dynos with ``docker exec``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from release.launch import app_containers
from tests.e2e.hostile import Hostile, hostile, work_tree  # noqa: F401

WEB = "python3 -m http.server $PORT"


def deploy(hostile: Hostile, tmp_path: Path, folder: str) -> tuple[str, Any]:  # noqa: F811
    app = hostile.new_app(tmp_path / folder, "true", web=WEB)
    pushed = hostile.push(app, work_tree(tmp_path / f"w{folder}"))
    assert pushed.returncode == 0, pushed.stderr
    import docker

    (dyno,) = app_containers(docker.from_env(), app, layout=hostile.layout)
    return app, dyno


def run_in(dyno: Any, *argv: str) -> tuple[int, str]:
    code, output = dyno.exec_run(list(argv), user="1000")
    return code, output.decode()


def through_router(hostile: Hostile, app: str) -> int:  # noqa: F811
    return requests.get(f"http://127.0.0.1:{hostile.settings.router_port}/",
                        headers={"Host": f"{app}.localhost"}, timeout=10).status_code


def test_dynos_are_unprivileged_limited_and_read_only(
        hostile: Hostile, tmp_path: Path) -> None:  # noqa: F811
    one, dyno_one = deploy(hostile, tmp_path, "a")
    two, dyno_two = deploy(hostile, tmp_path, "b")

    code, status = run_in(dyno_one, "cat", "/proc/self/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapEff"].strip() == fields["CapBnd"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    host = dyno_one.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["NanoCpus"] == int(hostile.settings.launch_cpus * 1e9)
    assert host["Memory"] > 0 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] == hostile.settings.launch_pids
    assert host["CapDrop"] == ["ALL"] and host["Privileged"] is False
    # the root filesystem is read-only, /tmp is not
    code, out = run_in(dyno_one, "sh", "-c", "echo x > /etc/x")
    assert code != 0 and "Read-only file system" in out
    assert run_in(dyno_one, "sh", "-c", "echo x > /tmp/x && cat /tmp/x") == (0, "x\n")

    # the router reaches both
    assert through_router(hostile, one) == through_router(hostile, two) == 200
