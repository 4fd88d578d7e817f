"""nginx configuration for the app router, and the graceful reload that applies it.

::

    run/nginx/nginx.conf       the master's configuration (written by shipway/router.py at start)
    run/nginx/listen.toml      where the running router listens; absent while none runs
    run/nginx/nginx.pid        the master's pid (written by nginx)
    run/nginx/apps/NAME.conf   one app: upstream of its web dynos, its hosts, TLS (written here)
    run/nginx/temp/            nginx's temp folders
    logs/nginx-error.log       nginx's own errors
    logs/router/NAME.log       one JSON line per request (nginx's access log; see applog.py)

Any process that moves traffic (the server, a local CLI) calls ``sync_app`` after changing where
an app's web dynos are, its domains or its certificate: the app's file is rendered from the
route, domains and certificate files, written atomically, and nginx reloads gracefully (new
workers take new connections, old ones finish the requests they hold). ``sync_app`` returns
once the new workers run, so a caller may stop the old dynos right after.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from shipway import log
from shipway.domains import cert_file, has_certificate, key_file, read_domains
from shipway.errors import SettingsError
from shipway.files import locked, write_atomically
from shipway.layout import Layout

RELOAD_TIMEOUT = 10.0
UPSTREAM_KEEPALIVE = 32
# characters a path may hold to be written into nginx's configuration unquoted-safe
SAFE_PATH = re.compile(r"[A-Za-z0-9/._+@:,=-]+")
# a client's X-Request-Id is kept when it is printable ASCII without spaces, at most 200 chars
REQUEST_ID = r"^[!-~]{1,200}$"


@dataclass(frozen=True, slots=True)
class Listen:
    """Where the running router listens, kept in ``run/nginx/listen.toml`` (router.py)."""

    host: str
    port: int
    https_port: int
    domain: str
    max_body_size: int
    pid: int = 0


def nginx_dir(layout: Layout) -> Path:
    return layout.run_dir / "nginx"


def apps_conf_dir(layout: Layout) -> Path:
    return nginx_dir(layout) / "apps"


def app_conf(layout: Layout, app: str) -> Path:
    return apps_conf_dir(layout) / f"{layout.app_dir(app).name}.conf"


def listen_file(layout: Layout) -> Path:
    return nginx_dir(layout) / "listen.toml"


def pid_file(layout: Layout) -> Path:
    return nginx_dir(layout) / "nginx.pid"


def main_conf(layout: Layout) -> Path:
    return nginx_dir(layout) / "nginx.conf"


def error_log(layout: Layout) -> Path:
    return layout.logs_dir / "nginx-error.log"


def router_log(layout: Layout, app: str) -> Path:
    return layout.logs_dir / "router" / f"{layout.app_dir(app).name}.log"


def read_listen(layout: Layout) -> Listen | None:
    try:
        doc = tomllib.loads(listen_file(layout).read_text("utf-8"))
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        return None
    return Listen(str(doc["host"]), int(doc["port"]), int(doc["https_port"]),
                  str(doc["domain"]), int(doc["max_body_size"]), int(doc.get("pid", 0)))


def write_listen(layout: Layout, listen: Listen) -> None:
    write_atomically(listen_file(layout), tomli_w.dumps({
        "host": listen.host, "port": listen.port, "https_port": listen.https_port,
        "domain": listen.domain, "max_body_size": listen.max_body_size, "pid": listen.pid,
    }))


def safe_path(path: Path) -> str:
    """``path`` as text for nginx; refuses one nginx would read as a variable or a quote."""
    text = str(path)
    if not SAFE_PATH.fullmatch(text):
        raise SettingsError(f"The data home {text!r} holds characters nginx cannot take in a "
                            "path; use a folder of letters, digits, '/', '.', '_' and '-'.")
    return text


def _listen_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def render_main(layout: Layout, listen: Listen, *, workers: str, user: str) -> str:
    """The master configuration: shared proxy behaviour, the unknown-host server, app files."""
    temp = safe_path(nginx_dir(layout) / "temp")
    addr = _listen_addr(listen.host, listen.port)
    tls_addr = _listen_addr(listen.host, listen.https_port)
    return f"""\
# written by Shipway (shipway/router.py); changes are lost at the next start
daemon off;
master_process on;
user {user};
worker_processes {workers};
pid {safe_path(pid_file(layout))};
error_log {safe_path(error_log(layout))} warn;
worker_shutdown_timeout 60s;
events {{ worker_connections 4096; }}
http {{
    default_type application/octet-stream;
    server_tokens off;
    access_log off;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 10000;
    server_names_hash_bucket_size 128;
    server_names_hash_max_size 4096;
    map_hash_bucket_size 128;
    variables_hash_bucket_size 128;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    client_max_body_size {listen.max_body_size};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:shipway_tls:10m;

    map $http_upgrade $shipway_connection {{ default upgrade; "" ""; }}
    map $msec $shipway_request_start {{ "~^(?<s>[0-9]+)\\.(?<ms>[0-9]+)$" $s$ms; default $msec; }}
    map $http_x_request_id $shipway_request_id {{ "~{REQUEST_ID}" $http_x_request_id; default $request_id; }}

    # streaming (chunked, server-sent events) and uploads pass through as they come
    proxy_http_version 1.1;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_connect_timeout 5s;
    proxy_send_timeout 300s;
    proxy_read_timeout 300s;
    # a dyno that vanished mid-switch: try the next one, for requests that are safe to repeat
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 4;
    proxy_set_header Host $http_host;
    proxy_set_header Connection $shipway_connection;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Port $server_port;
    proxy_set_header X-Request-Id $shipway_request_id;
    proxy_set_header X-Request-Start $shipway_request_start;

    server {{
        listen {addr} default_server;
        listen {tls_addr} ssl default_server;
        ssl_reject_handshake on;
        server_name _;
        default_type text/plain;
        location / {{ return 404 "No such app at $host.\\n"; }}
    }}
    include {safe_path(apps_conf_dir(layout))}/*.conf;
}}
"""


def _var(app: str) -> str:
    return app.replace("-", "_")


def _log_format(app: str) -> str:
    fields = {
        "time": "$msec", "method": "$request_method", "path": "$request_uri", "host": "$host",
        "request_id": "$shipway_request_id", "fwd": "$proxy_add_x_forwarded_for",
        "dyno": f"$shipway_dyno_{_var(app)}", "connect": "$upstream_connect_time",
        "service": "$upstream_response_time", "status": "$status", "bytes": "$bytes_sent",
        "protocol": "$scheme", "upstream_status": "$upstream_status",
    }
    body = ",".join(f'"{k}":"{v}"' for k, v in fields.items())
    return f"log_format shipway_{_var(app)} escape=json '{{{body}}}';"


def maintenance_flag(layout: Layout, app: str) -> Path:
    """Present while the app is in maintenance mode (``shipway/maintenance.py`` writes it)."""
    return layout.app_dir(app) / "maintenance"


def render_app(layout: Layout, listen: Listen, app: str, backends: tuple[str, ...],
               dynos: tuple[str, ...]) -> str:
    """One app's file: its upstream, the dyno names for log lines, its hosts, TLS, pages."""
    var = _var(app)
    hosts = [f"{app}.{listen.domain}".lower(), *read_domains(layout, app)]
    addr = _listen_addr(listen.host, listen.port)
    lines = [f"# {app}: written by Shipway (shipway/nginx.py)"]
    names = [f'    "~(^|, ){re.escape(b)}$" "{d}";' for b, d in zip(backends, dynos, strict=False)
             if d]
    lines += [f"map $upstream_addr $shipway_dyno_{var} {{", '    default "";', *names, "}",
              _log_format(app)]
    if backends:
        lines += [f"upstream shipway_{var} {{",
                  *(f"    server {b} max_fails=0;" for b in backends),
                  f"    keepalive {UPSTREAM_KEEPALIVE};", "    keepalive_timeout 60s;", "}"]
    lines += ["server {", f"    listen {addr};"]
    if has_certificate(layout, app):
        lines += [f"    listen {_listen_addr(listen.host, listen.https_port)} ssl;",
                  f"    ssl_certificate {safe_path(cert_file(layout, app))};",
                  f"    ssl_certificate_key {safe_path(key_file(layout, app))};"]
    lines += [f"    server_name {' '.join(hosts)};",
              f"    access_log {safe_path(router_log(layout, app))} shipway_{var};",
              "    error_page 413 @too_large;",
              "    error_page 502 504 @unavailable;",
              "    location @too_large {",
              "        default_type text/plain;",
              f'        return 413 "Request body too large: {app} accepts at most '
              f'{_size(listen.max_body_size)}.\\n";',
              "    }",
              "    location @unavailable {",
              "        default_type text/html;",
              f"        return 502 '{_page(app, 'did not answer', 'Application error')}';",
              "    }",
              "    location / {"]
    if maintenance_flag(layout, app).exists():
        lines += ["        default_type text/html;",
                  f"        return 503 '{_maintenance_page(app)}';"]
    elif backends:
        lines += [f"        proxy_pass http://shipway_{var};"]
    else:
        lines += ["        default_type text/html;",
                  f"        return 503 '{_page(app, 'has no web process running', 'No web processes running')}';"]  # noqa: E501
    lines += ["    }", "}", ""]
    return "\n".join(lines)


def _size(size: int) -> str:
    for unit, scale in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def _maintenance_page(app: str) -> str:
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Offline for "
            "Maintenance</title></head><body><h1>Offline for Maintenance</h1><p>The app "
            f"<strong>{app}</strong> is undergoing maintenance right now. Please check back "
            "soon.</p></body></html>\\n")


def _page(app: str, what: str, title: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>The app <strong>{app}</strong> {what}. If you own it, "
            f"check <code>shipway ps -a {app}</code> and <code>shipway logs -a {app}</code>."
            "</p></body></html>\\n")


# applying changes ------------------------------------------------------------------------------
def sync_app(layout: Layout, app: str, backends: tuple[str, ...] | None = None,
             dynos: tuple[str, ...] = ()) -> None:
    """Render the app's file and reload the running router (a no-op when none runs).

    ``backends=None`` takes them from the app's route file (``release/routes.py``).
    """
    listen = read_listen(layout)
    if listen is None:
        return
    if backends is None:
        backends, dynos = _routed(layout, app)
    text = render_app(layout, listen, app, backends, dynos)
    with locked(layout.locks_dir / "nginx.lock"):
        path = app_conf(layout, app)
        with contextlib.suppress(FileNotFoundError):
            if path.read_text("utf-8") == text:
                return
        write_atomically(path, text)
        reload(layout, listen)


def drop_app(layout: Layout, app: str) -> None:
    """Remove the app's file (a destroyed app): its hosts answer 404 after the reload."""
    listen = read_listen(layout)
    with locked(layout.locks_dir / "nginx.lock"):
        path = app_conf(layout, app)
        if not path.exists():
            return
        path.unlink()
        if listen is not None:
            reload(layout, listen)


def _routed(layout: Layout, app: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from release.routes import read_route, route_file  # release/ builds on this module

    path = route_file(layout, app)
    if not path.exists():
        return (), ()
    route = read_route(path, app)
    return route.backends, route.dynos


def master_pid(layout: Layout, listen: Listen | None = None) -> int | None:
    """The running master's pid, when it is the one this data home started."""
    try:
        pid = int(pid_file(layout).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if listen is not None and listen.pid and pid != listen.pid:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if str(main_conf(layout)).encode() in cmdline else None


def workers(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def reload(layout: Layout, listen: Listen | None = None) -> None:
    """SIGHUP the master and wait until workers with the new configuration run.

    A configuration nginx refuses leaves the old one serving; the error goes to the log.
    """
    pid = master_pid(layout, listen)
    if pid is None:
        return
    before = workers(pid)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    quitting = False
    while time.monotonic() < deadline:
        now = workers(pid)
        fresh = now - before
        if not quitting and fresh and all(_title(p) == b"worker process" for p in fresh):
            # the master tells the old workers to finish only 100 ms after the new ones
            # started (a fixed pause in nginx); its signal is the one we send now
            for old in before & now:
                if _title(old) == b"worker process":
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(old, signal.SIGQUIT)
            quitting = True
        # the old workers took their QUIT: they accept no new connection
        if quitting and all(_title(p) in (None, b"worker process is shutting down")
                            for p in before & now):
            return
        time.sleep(0.002)
    log.get(component="router").error("router_reload_failed", error=_last_error(layout))


def _title(pid: int) -> bytes | None:
    """What an nginx process says it is (``worker process``), None once it exited (a zombie
    the master has not reaped yet has an empty command line)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not cmdline:
        return None
    return cmdline.split(b"\0", 1)[0].removeprefix(b"nginx: ").strip()


def _last_error(layout: Layout) -> str:
    with contextlib.suppress(OSError):
        lines = error_log(layout).read_text("utf-8", errors="replace").splitlines()
        for line in reversed(lines):
            if "[emerg]" in line or "[error]" in line:
                return line
    return "nginx did not start new workers"
