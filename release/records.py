"""The release record: one per version, written by release/store.py as
``apps/NAME/releases/vNNNNNNN.toml``.

Field names follow Heroku's Platform API Release object where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["pending", "succeeded", "failed"]


@dataclass(frozen=True, slots=True)
class Release:
    """A release; once ``succeeded`` or ``failed`` it is never rewritten."""

    app: str
    version: int
    description: str
    status: Status
    user: str
    created_at: str
    updated_at: str
    slug: str = ""
    commit: str = ""
    commit_description: str = ""
    config: dict[str, str] = field(default_factory=dict)
    addons: tuple[str, ...] = ()
    output: str = ""
    failure: str = ""
    launched: bool = False

    @property
    def name(self) -> str:
        return f"v{self.version}"
