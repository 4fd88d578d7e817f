"""End-to-end fixtures: the stack image (built once per session), build-container bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from builder.stack import ensure_stack
from shipway.settings import Settings


class PrintedOutput:
    """An Output that keeps every line a pusher would read (``!`` lines prefixed)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.lines.append(f" !     {text}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="session")
def stack_image(docker_client: Any) -> str:
    """Shipway's default stack image (debootstrap on first use, minutes; reused afterwards)."""
    out = PrintedOutput()
    image = ensure_stack(Settings(), docker=docker_client, out=out)
    docker_client.images.get(image)
    return image


def build_containers(docker_client: Any) -> list[Any]:
    """Build containers still present, running or not (there should never be any)."""
    return list(docker_client.containers.list(all=True, filters={"label": "shipway.role=build"}))
