"""Slugs for tests of release/ and of its callers: a gzip tarball of a few files, archived.

The tarball holds ``app/NAME`` entries (unpacked at the root, as Heroku slugs are) owned by the app user, as the
builder's slugs do; ``make_slug`` adds it to the archive with the given process types.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import io
import tarfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.slug import Slug, SlugArchive
from builder.stack import STACK_NAME
from hooks.sideband import Collector
from shipway.accounts import now_iso
from shipway.layout import Layout

# a stdlib web app that answers with its code version, release, a config var and its dyno
WEB_APP = """\
import os, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
CODE = {code!r}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        env = os.environ
        body = " ".join([CODE, env["SHIPWAY_RELEASE"], env["DYNO"],
                         "profile=" + env.get("PROFILE_SOURCED", "no"),
                         "greeting=" + env.get("GREETING", "")]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


print("booting", CODE, "on", os.environ["PORT"], flush=True)
ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def web_app_files(code: str) -> dict[str, str]:
    return {
        "app.py": WEB_APP.format(code=code),
        "Procfile": "web: python3 app.py\n",
        ".profile.d/shipway-test.sh": "export PROFILE_SOURCED=yes\n",
    }


def slug_tarball(files: Mapping[str, str], path: Path) -> Path:
    """Write a deterministic gzip tarball of ``files`` (relative to /app) to ``path``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path("app", name).parent) for name in files})
        for folder in dirs:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 1000, 1000
            tar.addfile(info)
        for name, text in sorted(files.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"app/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


def make_slug(layout: Layout, app: str, files: Mapping[str, str],
              process_types: Mapping[str, str], *, commit: str = "0" * 40) -> Slug:
    layout.slugs_dir.mkdir(parents=True, exist_ok=True)
    tarball = slug_tarball(files, layout.slugs_dir / f"incoming-{app}.tar.gz")
    return SlugArchive(layout).add(
        tarball, app=app, commit=commit, created_at=now_iso(), stack=STACK_NAME,
        buildpack="test", process_types=dict(process_types), build_duration=0.0, build_key="",
    )


RecordedOutput = Collector


def fetch(router_port: int, app: str, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """GET ``http://APP.localhost:PORT/path`` the way a browser would, via 127.0.0.1."""
    conn = http.client.HTTPConnection("127.0.0.1", router_port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"{app}.localhost:{router_port}"})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


def remove_containers(docker: Any, app: str) -> None:
    """Remove every container of ``app`` (dynos, leftovers); ones already gone are fine."""
    from release.launch import list_containers

    for container in list_containers(docker, filters={"label": f"shipway.app={app}"}):
        with contextlib.suppress(Exception):
            container.remove(force=True)


class Poller:
    """A client asking the app through the router every 50 ms; keeps answers and errors."""

    def __init__(self, router_port: int, app: str, interval: float = 0.05) -> None:
        self.router_port, self.app, self.interval = router_port, app, interval
        self.answers: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = fetch(self.router_port, self.app)
                if status == 200:
                    self.answers.append(body)
                else:
                    self.errors.append(f"{status} {body}")
            except OSError as exc:
                self.errors.append(repr(exc))
            time.sleep(self.interval)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
