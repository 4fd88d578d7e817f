"""The app router: ``http://NAME.DOMAIN:PORT/`` -> the current release's web dynos.

An in-process asyncio HTTP/1.1 reverse proxy (stdlib only) on its own thread and loop. Routes
come from ``run/routes/NAME.toml`` (release/routes.py), written atomically by whoever launches;
the router stats the file on every request and re-reads it when it changed, so a CLI process
switches traffic without talking to the server, and a switch is one rename: atomic.

Bodies stream both ways; a client connection is kept alive and each request picks a backend
anew (round-robin over web.N); ``Upgrade`` requests (websockets) are spliced raw after the 101.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from release.routes import Route, read_route, route_file
from shipway import log
from shipway.errors import InvalidName, ShipwayError
from shipway.layout import Layout
from shipway.names import check_app_name
from shipway.settings import Settings

HEAD_LIMIT = 64 * 1024
CHUNK = 64 * 1024
IDLE_TIMEOUT = 75.0
CONNECT_TIMEOUT = 5.0
RESPONSE_TIMEOUT = 300.0
# pauses before each try of a request: a dyno hiccup or a traffic switch costs a retry, not an error
RETRY_DELAYS = (0.0, 0.05, 0.2, 0.5)
LOST = "lost"
BODY_GRACE = 1.0
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
)
NO_BODY_STATUS = (204, 304)


class BadRequest(Exception):
    """The client sent something that is not HTTP/1.x we can forward."""


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed request or response head (``first`` is the request or status line)."""

    first: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        name = name.lower()
        values = [v for k, v in self.headers if k.lower() == name]
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> set[str]:
        value = self.get(name) or ""
        return {t.strip().lower() for t in value.split(",") if t.strip()}


def parse_head(raw: bytes) -> Message:
    lines = raw.decode("latin-1").split("\r\n")
    first, headers = lines[0], []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise BadRequest("obsolete header folding")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"bad header line {line!r}")
        headers.append((name, value.strip()))
    return Message(first, headers)


def body_framing(message: Message) -> tuple[str, int]:
    """``("chunked", 0)``, ``("length", n)`` or ``("none", 0)`` for a request body."""
    encoding = message.tokens("transfer-encoding")
    length = message.get("content-length")
    if encoding:
        if length is not None or "chunked" not in encoding:
            raise BadRequest("ambiguous request body framing")
        return "chunked", 0
    if length is not None:
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise BadRequest("bad Content-Length")
        return "length", int(values.pop())
    return "none", 0


async def copy_exact(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int) -> None:
    while size > 0:
        data = await reader.read(min(size, CHUNK))
        if not data:
            raise ConnectionError("peer closed in the middle of a body")
        writer.write(data)
        await writer.drain()
        size -= len(data)


async def copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Forward a chunked body as is, stopping after its last chunk and trailers."""
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ConnectionError("bad chunk size") from None
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                writer.write(trailer)
                if trailer == b"\r\n":
                    await writer.drain()
                    return
        await copy_exact(reader, writer, size + 2)


async def copy_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()


def plain_response(status: int, reason: str, text: str, *, close: bool) -> bytes:
    body = text.encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode("latin-1") + body


class RouteTable:
    """Route files, cached until their (inode, mtime, size) changes."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._cache: dict[str, tuple[tuple[int, int, int], Route]] = {}
        self._turn: dict[str, int] = {}

    def app_exists(self, app: str) -> bool:
        return self.layout.app_file(app).exists()

    def route(self, app: str) -> Route | None:
        path = route_file(self.layout, app)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._cache.pop(app, None)
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache.get(app)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            route = read_route(path, app)
        except (OSError, ValueError):
            return cached[1] if cached else None
        self._cache[app] = (stamp, route)
        return route

    def backends(self, app: str) -> list[str]:
        """This request's backends in round-robin order (the first is tried first)."""
        route = self.route(app)
        if route is None or not route.backends:
            return []
        turn = self._turn.get(app, 0)
        self._turn[app] = turn + 1
        start = turn % len(route.backends)
        return list(route.backends[start:] + route.backends[:start])


class Router:
    """``Router(layout, settings).start()`` binds and returns; ``.port``; ``.stop()``."""

    def __init__(self, layout: Layout, settings: Settings) -> None:
        self.layout = layout
        self.settings = settings
        self.host = settings.router_host
        self.port = settings.router_port
        self.routes = RouteTable(layout)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self.log = log.get(component="router")

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> Router:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                server = loop.run_until_complete(
                    asyncio.start_server(self._client, self.host, self.port, limit=HEAD_LIMIT,
                                         reuse_address=True)
                )
            except OSError as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self.port = int(server.sockets[0].getsockname()[1])
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                for task in list(self._clients):
                    task.cancel()
                loop.run_until_complete(
                    asyncio.gather(*self._clients, return_exceptions=True)
                )
                loop.run_until_complete(server.wait_closed())
                loop.close()

        self._thread = threading.Thread(target=run, name="shipway-router", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise ShipwayError(f"The router cannot listen on {self.host}:{self.port}: {failure[0]}")
        self.log.info("router_started", host=self.host, port=self.port)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def url(self, app: str) -> str:
        return f"http://{app}.{self.settings.router_domain}:{self.port}/"

    # one client connection ----------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else ""
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    writer.write(plain_response(431, "Request Header Fields Too Large",
                                                "Request headers too large.\n", close=True))
                    return
                try:
                    request = parse_head(raw)
                    keep = await self._request(request, reader, writer, client_ip)
                except BadRequest as exc:
                    writer.write(plain_response(400, "Bad Request", f"Bad request: {exc}\n",
                                                close=True))
                    return
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()
            if task is not None:
                self._clients.discard(task)

    def _app_of(self, request: Message) -> tuple[str | None, str]:
        host = (request.get("host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        suffix = "." + self.settings.router_domain.lower()
        if not name.endswith(suffix):
            return None, name
        app = name[: -len(suffix)]
        try:
            check_app_name(app)
        except InvalidName:
            return None, name
        return (app if self.routes.app_exists(app) else None), name

    async def _request(self, request: Message, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, client_ip: str) -> bool:
        """Forward one request; True when the client connection may carry another."""
        parts = request.first.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest("not an HTTP/1.x request line")
        method, target, version = parts
        framing, length = body_framing(request)
        client_close = "close" in request.tokens("connection") or version == "HTTP/1.0"
        app, host = self._app_of(request)
        if app is None:
            await self._drain_body(reader, framing, length)
            writer.write(plain_response(
                404, "Not Found", f"No such app at {host or 'this address'}.\n",
                close=client_close))
            await writer.drain()
            return not client_close
        upgrade = request.get("upgrade") if "upgrade" in request.tokens("connection") else None
        head = self._upstream_head(method, target, request, client_ip, upgrade)
        backends = self.routes.backends(app)
        has_body = framing == "chunked" or length > 0
        attempt = 0
        while backends and attempt < len(RETRY_DELAYS):
            await asyncio.sleep(RETRY_DELAYS[attempt])
            backend = backends[attempt % len(backends)]
            attempt += 1
            outcome = await self._try_backend(
                backend, head, request, method, reader, writer, framing, length, upgrade,
                client_close,
            )
            if outcome is LOST:
                if has_body:
                    break  # the body is gone: it cannot be replayed on another backend
            elif outcome is not None:
                return bool(outcome)
            # a route that just switched: the next try goes to the new dynos
            route = self.routes.route(app)
            if route is not None and route.backends and set(route.backends) != set(backends):
                backends = list(route.backends)
        status = (502, "Bad Gateway") if backends else (503, "Service Unavailable")
        text = (f"{app} did not answer.\n" if backends
                else f"{app} has no web process running.\n")
        if not has_body:
            writer.write(plain_response(*status, text, close=client_close))
            await writer.drain()
            return not client_close
        writer.write(plain_response(*status, text, close=True))
        return False

    def _upstream_head(self, method: str, target: str, request: Message, client_ip: str,
                       upgrade: str | None) -> bytes:
        named = request.tokens("connection")
        lines = [f"{method} {target} HTTP/1.1"]
        forwarded_for = None
        for name, value in request.headers:
            low = name.lower()
            if low in HOP_BY_HOP or low in named:
                continue
            if low == "x-forwarded-for":
                forwarded_for = value
                continue
            if low in ("x-forwarded-proto", "x-forwarded-port", "x-request-start"):
                continue
            lines.append(f"{name}: {value}")
        chain = f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip
        lines += [
            f"X-Forwarded-For: {chain}",
            "X-Forwarded-Proto: http",
            f"X-Forwarded-Port: {self.port}",
            f"X-Request-Start: {int(time.time() * 1000)}",
        ]
        if upgrade:
            lines += ["Connection: Upgrade", f"Upgrade: {upgrade}"]
        else:
            # one upstream connection per request: the response ends where the body ends
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _drain_body(self, reader: asyncio.StreamReader, framing: str, length: int) -> None:
        sink = _NullWriter()
        if framing == "chunked":
            await copy_chunked(reader, sink)  # type: ignore[arg-type]
        elif length:
            await copy_exact(reader, sink, length)  # type: ignore[arg-type]

    async def _try_backend(
        self, backend: str, head: bytes, request: Message, method: str,
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framing: str, length: int,
        upgrade: str | None, client_close: bool,
    ) -> bool | str | None:
        """Forward to one backend: True/False (keep-alive or not) once it answered; None when
        it could not be reached (nothing was sent); LOST when it dropped the request."""
        host, _, port = backend.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port), limit=HEAD_LIMIT), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError, ValueError):
            return None
        body_task: asyncio.Task[None] | None = None
        try:
            try:
                up_writer.write(head)
                await up_writer.drain()
            except ConnectionError:
                return LOST
            if framing == "chunked":
                body_task = asyncio.create_task(copy_chunked(reader, up_writer))
            elif length:
                body_task = asyncio.create_task(copy_exact(reader, up_writer, length))
            while True:
                try:
                    raw = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"),
                                                 RESPONSE_TIMEOUT)
                except (asyncio.IncompleteReadError, ConnectionError, TimeoutError,
                        asyncio.LimitOverrunError):
                    return LOST  # closed before answering (e.g. Docker's proxy, no listener)
                response = parse_head(raw)
                status = _status_of(response)
                if 100 <= status < 200 and status != 101:
                    writer.write(raw)  # interim answer (100 Continue), the final one follows
                    await writer.drain()
                    continue
                break
            if status == 101 and upgrade:
                writer.write(raw)
                await writer.drain()
                if body_task is not None:
                    body_task.cancel()
                await asyncio.gather(copy_until_eof(reader, up_writer),
                                     copy_until_eof(up_reader, writer))
                return False
            # the app may answer before reading the whole body (413, 401): relay it at once
            keep = await self._relay_response(response, method, up_reader, writer, client_close)
            if body_task is not None:
                done, _ = await asyncio.wait({body_task}, timeout=BODY_GRACE)
                finished = body_task in done and body_task.exception() is None
                body_task = None if body_task in done else body_task
                if not finished:
                    return False  # the rest of the body is still on the wire: close
            return keep
        except BadRequest:
            writer.write(plain_response(502, "Bad Gateway", "The app sent a bad response.\n",
                                        close=True))
            return False
        finally:
            if body_task is not None:
                body_task.cancel()
            up_writer.close()

    async def _relay_response(self, response: Message, method: str,
                              up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              client_close: bool) -> bool:
        status = _status_of(response)
        named = response.tokens("connection")
        headers = [(k, v) for k, v in response.headers
                   if k.lower() not in HOP_BY_HOP and k.lower() not in named]
        chunked = "chunked" in response.tokens("transfer-encoding")
        length = response.get("content-length")
        no_body = method == "HEAD" or status in NO_BODY_STATUS
        until_eof = not no_body and not chunked and length is None
        close = client_close or until_eof
        lines = [response.first] + [f"{k}: {v}" for k, v in headers]
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if no_body:
            pass
        elif chunked:
            await copy_chunked(up_reader, writer)
        elif length is not None:
            if not length.strip().isdigit():
                raise BadRequest("bad Content-Length from the app")
            await copy_exact(up_reader, writer, int(length.strip()))
        else:
            await copy_until_eof(up_reader, writer)
        await writer.drain()
        return not close


class _NullWriter:
    """Swallows a body the router answers itself (404) so keep-alive stays in sync."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


def _status_of(response: Message) -> int:
    parts = response.first.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise BadRequest(f"bad status line {response.first!r}")
    return int(parts[1])
