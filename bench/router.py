"""Benchmark: the app router (issue #13): one dyno direct, through Shipway's router, through nginx.

One web dyno (a stdlib asyncio HTTP/1.1 server with keep-alive, so the dyno is not the limit) is
deployed with Shipway; ``wrk`` then measures, in the same run and interleaved round by round:

  direct         wrk -> the dyno's published port
  shipway        wrk -> Shipway's router (its own nginx: route file, router log line per request)
  plain nginx    wrk -> a hand-written nginx reverse proxy to the same port (keepalive upstream,
                 default buffering, default access log)

at 1 connection (latency) and at 20 connections (throughput). Targets: Shipway's router at least
0.9x the plain nginx proxy's requests/s at 20 connections, and at most 0.5 ms p50 added over the
direct path at 1 connection.
Usage: ``.venv/bin/python bench/router.py [--rounds N] [--seconds S]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import docker_client, ensure_stack_image, free_port, median, table, target

from release.deploy import deploy
from release.routes import read_route, route_file
from release.testing import RecordedOutput, make_slug, remove_containers
from shipway import nginx
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.router import Router, nginx_binary
from shipway.settings import Settings

THROUGHPUT_TARGET = 0.9
LATENCY_TARGET_MS = 0.5
EMAIL = "bench@example.com"

DYNO_APP = """\
import asyncio, os

BODY = b"hello from the bench dyno\\n"
ANSWER = (b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: "
          + str(len(BODY)).encode() + b"\\r\\n\\r\\n" + BODY)


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.pending = transport, b""

    def data_received(self, data):
        self.pending += data
        while (end := self.pending.find(b"\\r\\n\\r\\n")) >= 0:
            self.pending = self.pending[end + 4:]
            self.transport.write(ANSWER)


async def main():
    server = await asyncio.get_running_loop().create_server(
        Http, "0.0.0.0", int(os.environ["PORT"]), backlog=1024)
    await server.serve_forever()


asyncio.run(main())
"""

PLAIN_NGINX = """\
daemon off;
worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream dyno {{
        server {backend};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://dyno;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def worker_cpu_seconds(master: int | None) -> float:
    """CPU time (user + system) nginx's workers have used so far; 0 for the direct path."""
    if master is None:
        return 0.0
    ticks = 0
    for worker in nginx.workers(master):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(url: str, host: str, connections: int, seconds: int,
        master: int | None = None) -> tuple[float, float, float, float]:
    """(requests/s, p50 ms, p99 ms, proxy CPU µs per request) of one wrk run."""
    cpu_before = worker_cpu_seconds(master)
    threads = 1 if connections == 1 else 2
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", f"Host: {host}", url],
        capture_output=True, text=True, check=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", done.stdout, re.M)
        assert found is not None, done.stdout
        return float(found.group(1)) * UNITS[found.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"{url} ({host}) answered {errors.group(1)} errors:\n{done.stdout}")
    count = int(re.search(r"(\d+) requests in", done.stdout).group(1))  # type: ignore[union-attr]
    cpu = (worker_cpu_seconds(master) - cpu_before) * 1e6 / max(count, 1)
    return rate, percentile("50"), percentile("99"), cpu


def plain_nginx(tmp: Path, backend: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "plain-nginx.conf"
    conf.write_text(PLAIN_NGINX.format(tmp=tmp, backend=backend, port=port))
    process = subprocess.Popen([nginx_binary(), "-p", str(tmp), "-c", str(conf),
                                "-e", str(tmp / "error.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (tmp / "nginx.pid").exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"plain nginx did not start: {(tmp / 'error.log').read_text()}")
        time.sleep(0.02)
    time.sleep(0.2)
    return process, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: run scripts/host-setup")
        return 1
    ensure_stack_image()
    client = docker_client()
    app = f"bench-router-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="shipway-bench-router-") as tmp_name:
        tmp = Path(tmp_name)
        layout = Layout.at(tmp / "home")
        layout.ensure()
        settings = Settings(router_port=free_port(), router_https_port=free_port(),
                            launch_stop_grace=2.0)
        router = Router(layout, settings).start()
        plain: subprocess.Popen[bytes] | None = None
        try:
            create_app(layout, app, EMAIL)
            slug = make_slug(layout, app, {"app.py": DYNO_APP, "Procfile": "web: python3 app.py\n"},
                             {"web": "python3 app.py"})
            out = RecordedOutput()
            release = deploy(layout, settings, app=app, slug=slug, user=EMAIL, commit="b" * 40,
                             commit_description="bench", output_path=None, out=out,
                             docker=client)
            if release.status != "succeeded":
                print(out.text)
                return 1
            backend = read_route(route_file(layout, app), app).backends[0]
            plain_dir = tmp / "plain"
            plain_dir.mkdir()
            plain, plain_port = plain_nginx(plain_dir, backend)
            paths = {
                "direct": (f"http://{backend}/", backend, None),
                "shipway": (f"http://127.0.0.1:{router.port}/", f"{app}.localhost",
                            nginx.master_pid(layout)),
                "plain nginx": (f"http://127.0.0.1:{plain_port}/", "localhost", plain.pid),
            }
            results: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
            for url, host, _ in paths.values():
                wrk(url, host, 20, 1)  # warm-up: connections, page cache
            for _ in range(args.rounds):
                for connections in (1, 20):
                    for name, (url, host, master) in paths.items():
                        results.setdefault((name, connections), []).append(
                            wrk(url, host, connections, args.seconds, master))
            logged = sum(1 for _ in (layout.logs_dir / "router" / f"{app}.log").open())
        finally:
            if plain is not None:
                plain.terminate()
                plain.wait()
            router.stop()
            remove_containers(client, app)
            client.close()
    rows = []
    summary: dict[tuple[str, int], tuple[float, ...]] = {}
    for (name, connections), runs in results.items():
        summary[(name, connections)] = tuple(median([r[i] for r in runs]) for i in range(4))
    for connections in (1, 20):
        for name in paths:
            rate, p50, p99, cpu = summary[(name, connections)]
            rows.append([name, connections, f"{rate:,.0f}", p50, p99,
                         f"{cpu:.1f}" if name != "direct" else "-"])
    print(f"### app router: one dyno, wrk {args.seconds} s x {args.rounds} rounds (medians)\n")
    print(table(["path", "connections", "requests/s", "p50 ms", "p99 ms",
                 "proxy CPU µs/request"], rows))
    print("\nproxy CPU: user+system time of the nginx workers per request, less sensitive to "
          "other load on a shared machine than requests/s.")
    print()
    ratio = summary[("shipway", 20)][0] / summary[("plain nginx", 20)][0]
    added = summary[("shipway", 1)][1] - summary[("direct", 1)][1]
    print(f"Shipway's router wrote {logged:,} router log lines during the run.\n")
    print(target(f"Shipway router {ratio:.2f}x plain nginx req/s at 20 connections "
                 f">= {THROUGHPUT_TARGET:g}x", ratio >= THROUGHPUT_TARGET))
    print(target(f"Shipway router adds {added:.3f} ms p50 over direct at 1 connection "
                 f"<= {LATENCY_TARGET_MS:g} ms", added <= LATENCY_TARGET_MS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
