"""The front door: cheroot, with a head gate so anonymous clients cannot starve its workers.

cheroot hands a connection to a worker thread as soon as it is accepted (or, kept alive, as
soon as a byte arrives), and the worker then blocks reading the request head: 33 clients that
send half a head hold all 32 workers. cheroot has no header timeout of its own (its ``timeout``
is per socket read, so one byte every few seconds keeps a worker forever). Waitress and
hypercorn read whole request bodies before the app runs, which would read a refused push's
body; nginx in front would move the git endpoint behind a second server. So this keeps cheroot
and adds one small thing at accept time:

- ``HeadGate``: one thread and an edge-triggered epoll set. A connection reaches cheroot's
  worker pool only when its request head is complete in the socket buffer (peeked, never
  consumed, so cheroot parses exactly what it would have). A head that is not complete within
  ``head_timeout`` seconds gets ``408`` and is closed; one over ``HEAD_LIMIT`` gets ``431``.
  Thousands of idle or slow connections cost a file descriptor each, not a thread.
- ``CloseOnRefusal``: a response of 400 or more to a request whose body was not read closes
  the connection instead of reading the body to keep it alive (cheroot's default), so a
  refused request's body is never read.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any

from cheroot import wsgi

from shipway.log import get as get_log

HEAD_LIMIT = 64 * 1024
MAX_WAITING = 4096
TICK = 0.1
_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET


def head_complete(peeked: bytes) -> bool:
    """True when ``peeked`` holds a whole request head (blank lines before it are allowed)."""
    return b"\r\n\r\n" in peeked.lstrip(b"\r\n") or b"\n\n" in peeked.lstrip(b"\r\n")


def _refuse(sock: socket.socket, status: str) -> None:
    body = f"{status}\n".encode()
    head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with contextlib.suppress(OSError):
        sock.send(head + body, socket.MSG_DONTWAIT)


class HeadGate:
    """Holds connections until their request head has arrived, then hands them to ``ready``."""

    def __init__(self, ready: Any, *, head_timeout: float, max_waiting: int = MAX_WAITING) -> None:
        self.ready = ready
        self.head_timeout = head_timeout
        self.max_waiting = max_waiting
        self._epoll = select.epoll()
        self._waiting: dict[int, tuple[Any, float]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipway-head-gate", daemon=True)
        self._log = get_log()

    def start(self) -> HeadGate:
        self._thread.start()
        return self

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def add(self, conn: Any) -> None:
        """Watch ``conn`` (a cheroot HTTPConnection) until its head is complete."""
        fd = conn.socket.fileno()
        if fd < 0:
            return
        deadline = time.monotonic() + self.head_timeout
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                oldest = min(self._waiting, key=lambda k: self._waiting[k][1])
                self._drop(oldest, "503 Service Unavailable")
            self._waiting[fd] = (conn, deadline)
            # edge-triggered: bytes already buffered count as one edge at registration
            self._epoll.register(fd, _EVENTS)

    def _drop(self, fd: int, status: str | None) -> None:
        """Forget ``fd`` and close its connection (caller holds the lock)."""
        conn, _ = self._waiting.pop(fd)
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)
        if status is not None:
            _refuse(conn.socket, status)
        with contextlib.suppress(Exception):
            conn.close()

    def _check(self, fd: int) -> None:
        with self._lock:
            entry = self._waiting.get(fd)
            if entry is None:
                return
            conn = entry[0]
            try:
                peeked = conn.socket.recv(HEAD_LIMIT + 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                self._drop(fd, None)
                return
            if not peeked:
                self._drop(fd, None)  # the client hung up
                return
            if head_complete(peeked[:HEAD_LIMIT]):
                del self._waiting[fd]
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(fd)
            elif len(peeked) > HEAD_LIMIT:
                self._log.info("http.head_too_large", client=_client(conn))
                self._drop(fd, "431 Request Header Fields Too Large")
                return
            else:
                return
        self.ready(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [fd for fd, (_, deadline) in self._waiting.items() if deadline <= now]
            for fd in late:
                self._log.info("http.head_timeout", client=_client(self._waiting[fd][0]),
                               seconds=self.head_timeout)
                self._drop(fd, "408 Request Timeout")

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                events = self._epoll.poll(TICK)
            except OSError:
                continue
            for fd, _mask in events:
                self._check(fd)
            self._expire()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        with self._lock:
            for fd in list(self._waiting):
                self._drop(fd, None)
        self._epoll.close()


def _client(conn: Any) -> str:
    return str(getattr(conn, "remote_addr", "") or "")


class CloseOnRefusal(wsgi.Gateway_10):
    """cheroot's WSGI gateway; an error answer to a request with an unread body closes the
    connection instead of reading that body to keep the connection alive."""

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        write = super().start_response(status, headers, exc_info)
        if int(status[:3]) >= 400:
            remaining = getattr(self.req.rfile, "remaining", 0) or 0
            if remaining > 0 or self.req.chunked_read:
                self.req.close_connection = True
        return write


class FrontDoor(wsgi.Server):
    """``cheroot.wsgi.Server`` with the head gate in front of its worker pool."""

    def __init__(self, bind_addr: tuple[str, int], app: Any, *, head_timeout: float,
                 **kwargs: Any) -> None:
        super().__init__(bind_addr, app, **kwargs)
        self.gateway = CloseOnRefusal
        self.gate = HeadGate(super().process_conn, head_timeout=head_timeout)

    def prepare(self) -> None:
        super().prepare()
        self.gate.start()

    def process_conn(self, conn: Any) -> None:
        # bytes cheroot already read (a pipelined request) are not in the socket to peek at
        if conn.rfile.has_data():
            super().process_conn(conn)
        else:
            self.gate.add(conn)

    def stop(self) -> None:
        self.gate.stop()
        super().stop()


__all__ = ["FrontDoor", "HeadGate", "CloseOnRefusal", "head_complete"]
