"""Benchmark: push transport of Shipway (build stage off) against C git's own servers (issue #7.3).

Pushes of generated repositories, each into a fresh empty repository, to:

* shipway: ``shipway.server.start`` (git endpoint only, AnnounceStage) in a child process;
* http-backend: ``git http-backend`` behind a minimal Python HTTP server that runs it once per
  request with the CGI environment, the target repository with ``receive.fsckObjects=true``;
* file://: a local bare repository with ``receive.fsckObjects=true`` (no HTTP at all).

Repositories: 200 small files (1 commit); ~100 MB of mixed content over 20 commits. Then the
peak RSS (VmHWM) of the Shipway server process during a ~500 MB push.
Targets: Shipway <= 1.0x http-backend on the ~100 MB push; peak RSS < 200 MB on the 500 MB push.
Usage: ``.venv/bin/python bench/git_transport.py [--rounds N] [--skip-500]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

from _common import EMAIL, ROOT, TreeRss, git, git_env, median, peak_rss_kb, table, target

RSS_TARGET_MB = 200
MB = 1024 * 1024


# repositories -----------------------------------------------------------------------------
def small_repo(path: Path) -> Path:
    git("init", "-q", "-b", "master", str(path), cwd=path.parent)
    rng = random.Random(1)
    for i in range(200):
        file = path / f"src/pkg{i // 20}/module_{i}.py"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("".join(f"value_{j} = {rng.randrange(10**9)}\n" for j in range(30)))
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "200 small files", cwd=path)
    return path


def mixed_repo(path: Path, total_mb: int, commits: int, *, compression: int | None = None,
               text_share: float = 0.5) -> Path:
    """About ``total_mb`` of content over ``commits`` commits: random bytes (a new file each
    commit) and ten text files that change in a tenth of their lines each commit (deltas)."""
    git("init", "-q", "-b", "master", str(path), cwd=path.parent)
    if compression is not None:
        git("config", "core.compression", str(compression), cwd=path)
    rng = random.Random(2)
    per_commit = total_mb * MB // commits
    text_bytes = int(per_commit * text_share)
    words = [f"word{n}" for n in range(5000)]
    texts = [[" ".join(rng.choices(words, k=12)) for _ in range(text_bytes // 10 // 80)]
             for _ in range(10)]
    (path / "assets").mkdir()
    (path / "docs").mkdir()
    for c in range(commits):
        (path / "assets" / f"blob_{c}.bin").write_bytes(rng.randbytes(per_commit - text_bytes))
        for t, lines in enumerate(texts):
            for _ in range(len(lines) // 10):
                lines[rng.randrange(len(lines))] = " ".join(rng.choices(words, k=12))
            (path / "docs" / f"text_{t}.txt").write_text("\n".join(lines) + "\n")
        git("add", "-A", cwd=path)
        git("commit", "-q", "-m", f"commit {c}", cwd=path)
    return path


def bare_target(path: Path) -> Path:
    git("init", "-q", "--bare", str(path), cwd=path.parent)
    git("config", "receive.fsckObjects", "true", cwd=path)
    git("config", "http.receivepack", "true", cwd=path)
    return path


def time_push(work: Path, remote: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(["git", "push", "-q", remote, "master"], cwd=work, env=git_env(),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"push to {remote.split('@')[-1]} failed: {done.stderr[-800:]}")
    return seconds


# git http-backend behind the simplest HTTP server ---------------------------------------
class _Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    project_root = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update({
            "GIT_PROJECT_ROOT": self.project_root, "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "REMOTE_USER": "bench",
            "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        })
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        length = self.headers.get("Content-Length")
        if length is not None:
            env["CONTENT_LENGTH"] = length
        proc = subprocess.Popen(["git", "http-backend"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=self._feed, args=(proc.stdin, length))
        feeder.start()
        status, headers = "200 OK", []
        while True:
            line = proc.stdout.readline().rstrip(b"\r\n")
            if not line:
                break
            key, _, value = line.decode("latin-1").partition(":")
            if key.lower() == "status":
                status = value.strip()
            else:
                headers.append((key, value.strip()))
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := proc.stdout.read1(65536):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
        feeder.join()
        proc.wait()

    def _feed(self, stdin: IO[bytes], length: str | None) -> None:
        try:
            if length is not None:
                left = int(length)
                while left > 0:
                    data = self.rfile.read(min(left, 65536))
                    if not data:
                        break
                    stdin.write(data)
                    left -= len(data)
            elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    left = size
                    while left > 0:
                        data = self.rfile.read(min(left, 1 << 20))
                        stdin.write(data)
                        left -= len(data)
                    self.rfile.readline()
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()


@contextlib.contextmanager
def http_backend(project_root: Path) -> Iterator[int]:
    handler = type("Backend", (_Backend,), {"project_root": str(project_root)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# Shipway in a child process -------------------------------------------------------------
def serve_child(home: str) -> int:
    """``--serve HOME``: the git endpoint only, until stdin closes; prints its port."""
    sys.path.insert(0, str(ROOT))
    from shipway.layout import Layout
    from shipway.log import configure
    from shipway.server import start
    from shipway.settings import Settings

    configure(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    server = start(Layout(Path(home)), Settings(port=0))
    print(server.port, flush=True)
    sys.stdin.read()
    server.stop()
    return 0


class ShipwayChild:
    def __init__(self, home: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from shipway.accounts import Accounts
        from shipway.layout import Layout

        self.home = home
        self.layout = Layout(home)
        self.layout.ensure()
        _, self.token = Accounts(self.layout).create_token(EMAIL)
        self.count = 0
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(home)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def new_remote(self) -> str:
        from shipway.apps import create_app

        self.count += 1
        name = f"transport-{self.count}"
        create_app(self.layout, name, EMAIL)
        return f"http://{EMAIL.replace('@', '%40')}:{self.token}@127.0.0.1:{self.port}/{name}.git"

    def peak_rss_mb(self) -> float:
        return peak_rss_kb(self.proc.pid) / 1024

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def compare(work: Path, tmp: Path, rounds: int, label: str) -> list[list[object]]:
    shipway = ShipwayChild(tmp / f"home-{label}")
    roots = tmp / f"cgi-{label}"
    roots.mkdir()
    times: dict[str, list[float]] = {"shipway": [], "http-backend": [], "file://": []}
    try:
        with http_backend(roots) as port:
            for r in range(rounds):
                times["shipway"].append(time_push(work, shipway.new_remote()))
                bare = bare_target(roots / f"r{r}.git")
                times["http-backend"].append(time_push(work, f"http://127.0.0.1:{port}/r{r}.git"))
                local = bare_target(tmp / f"file-{label}-{r}.git")
                times["file://"].append(time_push(work, f"file://{local}"))
                shutil.rmtree(bare)
                shutil.rmtree(local)
    finally:
        shipway.stop()
        shutil.rmtree(shipway.home, ignore_errors=True)
    base = median(times["http-backend"])
    return [[label, name, median(v), min(v), median(v) / base] for name, v in times.items()]


def pack_size_mb(work: Path) -> float:
    out = git("count-objects", "-v", cwd=work).stdout
    loose = sum(int(line.split()[1]) for line in out.splitlines()
                if line.startswith(("size:", "size-pack:")))
    return loose / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-500", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_child(args.serve)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-git-") as name:
        tmp = Path(name)
        (tmp / "small").mkdir()
        small = small_repo(tmp / "small")
        (tmp / "mixed").mkdir()
        mixed = mixed_repo(tmp / "mixed", 100, 20)
        rows = compare(small, tmp, max(args.rounds, 5), "200 small files")
        rows += compare(mixed, tmp, args.rounds, f"~100 MB, 20 commits ({pack_size_mb(mixed):.0f} MB objects)")
        shutil.rmtree(mixed)
        print("### git push transport (build stage off)\n")
        print(table(["repository", "server", "median s", "min s", "ratio vs http-backend"], rows))
        print()
        ratio = float(rows[-3][4])  # type: ignore[arg-type]
        print(target(f"Shipway {ratio:.2f}x git http-backend on the ~100 MB push <= 1.0x",
                     ratio <= 1.0))
        if not args.skip_500:
            (tmp / "big").mkdir()
            big = mixed_repo(tmp / "big", 500, 10, compression=1, text_share=0.1)
            shipway = ShipwayChild(tmp / "home-big")
            try:
                remote = shipway.new_remote()
                with TreeRss(shipway.proc.pid) as tree_rss:
                    seconds = time_push(big, remote)
                rss = shipway.peak_rss_mb()
            finally:
                shipway.stop()
            print()
            print(table(["push", "seconds", "server peak RSS (VmHWM) MB",
                         "server + children (index-pack) peak RSS, sampled, MB"],
                        [[f"~500 MB ({pack_size_mb(big):.0f} MB objects) to Shipway", seconds,
                          f"{rss:.1f}", f"{tree_rss.peak_kb / 1024:.1f}"]]))
            print()
            print(target(f"peak RSS {rss:.0f} MB < {RSS_TARGET_MB} MB", rss < RSS_TARGET_MB))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
