"""The Procfile: ``name: command`` lines declaring an app's process types."""

from __future__ import annotations

import re

from shipway.errors import BuildFailed

PROCESS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


def parse_procfile(text: str) -> dict[str, str]:
    """Process types in file order; blank lines and ``#`` comments are skipped.

    Raises BuildFailed naming the first malformed line.
    """
    types: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not sep or not PROCESS_NAME.match(name) or not command:
            raise BuildFailed(f'Procfile line {number} is not "name: command": {raw.strip()!r}')
        if name in types:
            raise BuildFailed(f"Procfile line {number} declares {name!r} a second time.")
        types[name] = command
    return types
