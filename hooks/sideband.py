"""Sideband output: each line a stage writes reaches the pusher at once as ``remote: ...``."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dulwich.protocol import SIDE_BAND_CHANNEL_PROGRESS

ERROR_PREFIX = " !     "


class Sideband:
    """An ``Output`` over git's progress channel (2); thread-safe, unbuffered.

    ``write_channel(channel, data)`` is the protocol's ``write_sideband``; when the client did
    not ask for a sideband, lines go nowhere but the ``transcript`` (kept for the build log).
    """

    def __init__(
        self,
        write_channel: Callable[[int, bytes], None] | None,
        *,
        transcript: Callable[[str], None] | None = None,
    ) -> None:
        self._write = write_channel
        self._transcript = transcript
        self._lock = threading.Lock()
        self.broken = False

    def _send(self, text: str) -> None:
        data = (text.rstrip("\n") + "\n").encode("utf-8", "replace")
        with self._lock:
            if self._transcript is not None:
                self._transcript(text)
            if self._write is None or self.broken:
                return
            try:
                self._write(SIDE_BAND_CHANNEL_PROGRESS, data)
            except OSError:
                # the client went away; the stage goes on, its output is kept in the log
                self.broken = True

    def line(self, text: str) -> None:
        for part in text.split("\n") or [""]:
            self._send(part)

    def error(self, text: str) -> None:
        for part in text.split("\n"):
            self._send(ERROR_PREFIX + part)


class Collector:
    """An ``Output`` that keeps every line as the user would read it (``!`` lines prefixed)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.lines.append(ERROR_PREFIX + text)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
