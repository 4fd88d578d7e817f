"""Attaching to a one-off dyno through the server: the rendezvous (as Heroku's ``run`` does).

``POST /api/apps/{app}/dynos`` with ``attach: true`` creates the dyno and answers
``attach_url: rendezvous://HOST:PORT/SECRET``. The CLI opens a TCP connection to HOST:PORT and
sends ``SECRET\\n``; the secret is good once, for ``EXPIRY`` seconds, and is known only to the
user the API authorised for the app (owner or collaborator). The server answers ``ok\\n`` (or
``denied\\n`` and hangs up), starts the dyno, and both sides then exchange frames::

    kind (1 byte) | length (4 bytes, big endian) | payload
    client -> server:  i stdin bytes   c stdin closed   r "ROWS COLS" (window size)
    server -> client:  o stdout bytes  e stderr bytes   x exit status (ASCII digits), last

A client that hangs up ends the dyno. ``RemoteAttachment`` is the client's side; it offers the
same methods as ``release.oneoff.Session`` so the CLI drives both alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from release.oneoff import STDERR, STDOUT, Attachment
from shipway import log
from shipway.errors import ShipwayError

EXPIRY = 60.0
HELLO_TIMEOUT = 10.0
MAX_FRAME = 1 << 20
SCHEME = "rendezvous"


def send_frame(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    sock.sendall(kind + struct.pack(">I", len(payload)) + payload)


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    head = _exactly(sock, 5)
    if head is None:
        return None
    size = struct.unpack(">I", head[1:])[0]
    if size > MAX_FRAME:
        return None
    payload = _exactly(sock, size) if size else b""
    return None if payload is None else (head[:1], payload)


@dataclass
class _Pending:
    start: Callable[[], Attachment]
    cancel: Callable[[], None]
    expires: float


class Rendezvous:
    """The server's listener: one-time secrets, each bridging one connection to one dyno."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.host = host
        self._listener = socket.create_server((host, port))
        self.port: int = self._listener.getsockname()[1]
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="shipway-rendezvous",
                                        daemon=True)

    def start(self) -> Rendezvous:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for entry in pending:
            entry.cancel()

    def expect(self, secret: str, start: Callable[[], Attachment],
               cancel: Callable[[], None]) -> str:
        """Remember ``secret``; returns the attach URL to hand to the user."""
        self._expire()
        with self._lock:
            self._pending[_digest(secret)] = _Pending(start, cancel, time.monotonic() + EXPIRY)
        return f"{SCHEME}://{self.host}:{self.port}/{secret}"

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            gone = [k for k, v in self._pending.items() if v.expires < now]
            entries = [self._pending.pop(k) for k in gone]
        for entry in entries:
            entry.cancel()

    def _claim(self, secret: str) -> _Pending | None:
        with self._lock:
            entry = self._pending.pop(_digest(secret), None)
        return entry if entry is not None and entry.expires >= time.monotonic() else None

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="shipway-attach",
                             daemon=True).start()
            self._expire()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(HELLO_TIMEOUT)
            hello = b""
            while not hello.endswith(b"\n") and len(hello) < 200:
                try:
                    chunk = conn.recv(200 - len(hello))
                except OSError:
                    return
                if not chunk:
                    return
                hello += chunk
            entry = self._claim(hello.strip().decode("ascii", errors="replace"))
            if entry is None:
                log.get().warning("rendezvous_denied")
                with contextlib.suppress(OSError):
                    conn.sendall(b"denied\n")
                return
            conn.settimeout(None)
            try:
                attachment = entry.start()
            except Exception as exc:  # noqa: BLE001 - the user sees why, the dyno is gone
                entry.cancel()
                with contextlib.suppress(OSError):
                    conn.sendall(b"ok\n")
                    send_frame(conn, b"e", f" !    {exc}\n".encode())
                    send_frame(conn, b"x", b"1")
                return
            conn.sendall(b"ok\n")
            bridge(attachment, conn)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def bridge(attachment: Attachment, conn: socket.socket) -> None:
    """Frames from the client into the dyno, its output back; the exit status last."""
    def inbound() -> None:
        while (frame := read_frame(conn)) is not None:
            kind, payload = frame
            if kind == b"i":
                attachment.send(payload)
            elif kind == b"c":
                attachment.close_stdin()
            elif kind == b"r":
                rows, _, cols = payload.decode("ascii", errors="replace").partition(" ")
                if rows.isdigit() and cols.isdigit():
                    attachment.resize(int(rows), int(cols))
        attachment.close()  # the client hung up: the dyno ends (a no-op once it exited)

    threading.Thread(target=inbound, name="shipway-attach-in", daemon=True).start()
    try:
        for stream, data in attachment.output():
            send_frame(conn, b"e" if stream == STDERR else b"o", data)
        send_frame(conn, b"x", str(attachment.exit_status()).encode())
    except OSError:
        attachment.close()


class RemoteAttachment:
    """The CLI's end of a rendezvous connection (see the module docstring)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != SCHEME or not parts.hostname or not parts.port:
            raise ShipwayError(f"The server gave an attach URL this CLI cannot use: {url[:60]}",
                               hint="Update shipway on this machine.")
        try:
            self._sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
            self._sock.sendall(parts.path.lstrip("/").encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n") and len(answer) < 16:
                chunk = self._sock.recv(1)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            raise ShipwayError(f"Cannot attach to the dyno: {exc}.",
                               hint="Is the rendezvous port reachable from here?") from None
        if answer != b"ok\n":
            raise ShipwayError("The server refused to attach to the dyno.",
                               hint="The attach URL is good once, for a minute: run it again.")
        self._sock.settimeout(None)
        self._status: int | None = None
        self._send_lock = threading.Lock()

    def _send(self, kind: bytes, payload: bytes = b"") -> None:
        with self._send_lock, contextlib.suppress(OSError):
            send_frame(self._sock, kind, payload)

    def send(self, data: bytes) -> None:
        self._send(b"i", data)

    def close_stdin(self) -> None:
        self._send(b"c")

    def resize(self, rows: int, cols: int) -> None:
        self._send(b"r", f"{rows} {cols}".encode())

    def output(self) -> Iterator[tuple[int, bytes]]:
        while (frame := read_frame(self._sock)) is not None:
            kind, payload = frame
            if kind == b"x":
                text = payload.decode("ascii", errors="replace")
                self._status = int(text) if text.lstrip("-").isdigit() else 1
                return
            yield (STDERR if kind == b"e" else STDOUT), payload

    def exit_status(self) -> int:
        if self._status is None:
            raise ShipwayError("The connection to the dyno was lost before it ended.",
                               hint="Its output so far is above; see shipway logs.")
        return self._status

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


__all__ = ["Rendezvous", "RemoteAttachment", "bridge", "send_frame", "read_frame"]
