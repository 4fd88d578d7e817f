"""Config values kept out of what Shipway prints and keeps: ``[REDACTED]`` in their place.

A value of ``MIN_LENGTH`` characters or more is hidden wherever it appears in a line, and so is
each line of a multi-line value (a PEM key printed line by line); shorter values ("1", "true",
"prod") are too common in build output to hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

MIN_LENGTH = 8
MARK = "[REDACTED]"


class _Output(Protocol):
    def line(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...


def secrets_of(config: Mapping[str, str]) -> tuple[str, ...]:
    """What to hide for these config values, longest first (so no part of one is left)."""
    found: set[str] = set()
    for value in config.values():
        if len(value) >= MIN_LENGTH:
            found.add(value)
        for line in value.splitlines():
            if len(line.strip()) >= MIN_LENGTH:
                found.add(line.strip())
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MARK)
    return text


class RedactedOutput:
    """An Output that hides ``secrets`` before passing each line on."""

    def __init__(self, out: _Output, secrets: tuple[str, ...]) -> None:
        self.out = out
        self.secrets = secrets

    def line(self, text: str) -> None:
        self.out.line(redact(text, self.secrets))

    def error(self, text: str) -> None:
        self.out.error(redact(text, self.secrets))


__all__ = ["secrets_of", "redact", "RedactedOutput", "MARK", "MIN_LENGTH"]
