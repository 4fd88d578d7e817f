"""Throttling wrong credentials, per client address and per user name.

Each key (``addr:1.2.3.4``, ``user:dev@example.com``) has a bucket of ``capacity`` failures
that refills at ``capacity / window`` per second. While a key's bucket is empty, requests from
that address (or naming that user) get 429 with ``Retry-After`` before their credentials are
looked at, so a guess costs the guesser a wait and the server nothing. One table per data home:
the git endpoint and the API share it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

MAX_KEYS = 100_000

_TABLES: dict[Path, Throttle] = {}
_TABLES_LOCK = threading.Lock()


class Throttle:
    """Failure buckets; ``retry_after(keys)`` is 0 when none of the keys is throttled."""

    def __init__(self, capacity: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.window = window
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (failures, at)
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self.capacity / self.window

    def _level(self, key: str, now: float) -> float:
        failures, at = self._buckets.get(key, (0.0, now))
        return max(0.0, failures - (now - at) * self.rate)

    def retry_after(self, keys: tuple[str, ...]) -> int:
        """Seconds until every one of ``keys`` may try again (0: they may now)."""
        now = self.clock()
        with self._lock:
            wait = 0.0
            for key in keys:
                over = self._level(key, now) + 1 - self.capacity
                if over > 0:
                    wait = max(wait, over / self.rate)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, keys: tuple[str, ...]) -> None:
        now = self.clock()
        with self._lock:
            if len(self._buckets) > MAX_KEYS:
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if self._level(k, now) > 0}
            for key in keys:
                self._buckets[key] = (self._level(key, now) + 1, now)


def throttle_for(home: Path, capacity: int, window: float) -> Throttle:
    """The data home's shared table (made on first use with these limits)."""
    with _TABLES_LOCK:
        table = _TABLES.get(home)
        if table is None or (table.capacity, table.window) != (capacity, window):
            table = _TABLES[home] = Throttle(capacity, window)
        return table


def keys_for(address: str, user: str) -> tuple[str, ...]:
    """The buckets a request counts against: its address, and the user it names (if any)."""
    keys = (f"addr:{address}",)
    return keys + (f"user:{user.lower()[:254]}",) if user else keys


__all__ = ["Throttle", "throttle_for", "keys_for"]
