"""Process counts per app, kept in ``apps/NAME/formation.toml`` (``web = 2``, ``worker = 0``).

A process type missing from the file runs ``web=1`` and everything else ``0`` (Heroku's default);
the ``release`` type is never scaled: it runs once per release, before launch.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

import tomli_w

from shipway.errors import UsageError
from shipway.files import write_atomically
from shipway.layout import Layout

RELEASE_PHASE = "release"
MAX_QUANTITY = 100


@dataclass(frozen=True, slots=True)
class Formation:
    """The counts an app asked for, kept in ``apps/NAME/formation.toml``."""

    app: str
    counts: dict[str, int] = field(default_factory=dict)

    def quantity(self, process_type: str) -> int:
        if process_type == RELEASE_PHASE:
            return 0
        return self.counts.get(process_type, 1 if process_type == "web" else 0)

    def for_types(self, process_types: Mapping[str, str]) -> dict[str, int]:
        """The count of every runnable process type of a slug."""
        return {t: self.quantity(t) for t in sorted(process_types) if t != RELEASE_PHASE}


def read_formation(layout: Layout, app: str) -> Formation:
    path = layout.app_dir(app) / "formation.toml"
    if not path.exists():
        return Formation(app)
    doc = tomllib.loads(path.read_text("utf-8"))
    return Formation(app, {str(k): int(v) for k, v in doc.items()})


def write_formation(layout: Layout, formation: Formation) -> None:
    path = layout.app_dir(formation.app) / "formation.toml"
    write_atomically(path, tomli_w.dumps(dict(sorted(formation.counts.items()))))


def parse_counts(pairs: list[str]) -> dict[str, int]:
    """``["web=2", "worker=1"]`` -> ``{"web": 2, "worker": 1}``; UsageError on anything else."""
    counts: dict[str, int] = {}
    for pair in pairs:
        name, sep, number = pair.partition("=")
        if not sep or not name or not number.isdigit():
            raise UsageError(f"Invalid scaling argument {pair!r}: use TYPE=QUANTITY, e.g. web=2.")
        counts[name] = int(number)
    return counts


def check_counts(counts: Mapping[str, int], process_types: Mapping[str, str]) -> None:
    for name, quantity in counts.items():
        if name == RELEASE_PHASE or name not in process_types:
            raise UsageError(f"Couldn't find that process type ({name}).")
        if not 0 <= quantity <= MAX_QUANTITY:
            raise UsageError(f"Quantity for {name} must be between 0 and {MAX_QUANTITY}.")
