"""The wrong-credentials throttle: buckets per key that refill over the window."""

from __future__ import annotations

from shipway.frontdoor import head_complete
from shipway.throttle import Throttle, keys_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_throttled_after_capacity_failures_and_refills() -> None:
    clock = Clock()
    table = Throttle(3, 60.0, clock=clock)
    keys = keys_for("10.0.0.1", "Dev@Example.com")
    assert keys == ("addr:10.0.0.1", "user:dev@example.com")
    for _ in range(3):
        assert table.retry_after(keys) == 0
        table.failed(keys)
    assert table.retry_after(keys) == 20  # one failure refills every 60/3 s
    assert table.retry_after(("addr:10.0.0.1",)) == 20
    assert table.retry_after(("addr:10.0.0.2",)) == 0
    clock.now += 20
    assert table.retry_after(keys) == 0


def test_a_head_is_complete_only_with_its_blank_line() -> None:
    assert not head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head_complete(b"\r\nGET / HTTP/1.1\r\n\r\nbody")
    assert not head_complete(b"\r\n\r\n")
