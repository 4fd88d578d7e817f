"""The redis add-on's redis.conf, run by the host's own redis-server (Debian's package, the same
one the add-on's image installs): password enforced, plan's maxmemory, data kept in the AOF."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipway.addons.redis import render_conf
from tests.conftest import free_port, require


@pytest.fixture
def redis_bin() -> str:
    path = shutil.which("redis-server")
    require("redis-server (scripts/host-setup installs it)", path is not None)
    require("redis-cli", shutil.which("redis-cli") is not None)
    assert path is not None
    return path


def cli(port: int, *args: str, password: str = "") -> str:
    env = {"REDISCLI_AUTH": password} if password else {}
    done = subprocess.run(["redis-cli", "--no-auth-warning", "-p", str(port), *args],
                          capture_output=True, text=True, env=env, timeout=10)
    return (done.stdout + done.stderr).strip()


Starter = Callable[[Path, Path, int], "subprocess.Popen[bytes]"]


@pytest.fixture
def start(redis_bin: str, tmp_path: Path) -> Iterator[Starter]:
    running: list[subprocess.Popen[bytes]] = []

    def run(conf: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
        # the file as the add-on writes it; only where it listens and keeps data differ here
        # (redis chdirs to ``dir`` as it reads that line, so /data is swapped in the file)
        host_conf = tmp_path / "host.conf"
        host_conf.write_text(conf.read_text().replace("dir /data\n", f"dir {data}\n"))
        proc = subprocess.Popen([redis_bin, str(host_conf), "--port", str(port),
                                 "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        running.append(proc)
        deadline = time.monotonic() + 10
        while "NOAUTH" not in cli(port, "PING") and time.monotonic() < deadline:
            time.sleep(0.05)
        return proc

    yield run
    for proc in running:
        proc.kill()
        proc.wait()


def test_the_rendered_conf_guards_limits_and_persists(start: Starter, tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text(render_conf(password="pw-123", maxmemory_mb=25, addon="redis-x-1", app="web"))
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    server = start(conf, data, port)

    assert cli(port, "GET", "hits").startswith("NOAUTH")
    assert "WRONGPASS" in cli(port, "GET", "hits", password="wrong")
    assert cli(port, "CONFIG", "GET", "maxmemory", password="pw-123") == "maxmemory\n26214400"
    assert cli(port, "CONFIG", "GET", "maxmemory-policy", password="pw-123").endswith(
        "noeviction")
    assert cli(port, "INCRBY", "hits", "41", password="pw-123") == "41"

    server.terminate()  # SIGTERM, as docker stop sends: the AOF is flushed
    server.wait(timeout=10)
    assert list((data / "appendonlydir").glob("*.aof"))
    start(conf, data, port)
    assert cli(port, "INCR", "hits", password="pw-123") == "42"
