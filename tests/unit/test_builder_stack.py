"""The stack recipe: its digest decides whether the image is rebuilt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.stack import RECIPE_LABEL, STACK_NAME, ensure_stack, read_recipe
from shipway.settings import Settings


class FakeImage:
    def __init__(self, label: str) -> None:
        self.attrs = {"Config": {"Labels": {RECIPE_LABEL: label}}}


class FakeImages:
    def __init__(self, label: str) -> None:
        self.label = label

    def get(self, name: str) -> FakeImage:
        assert name == STACK_NAME
        return FakeImage(self.label)


class FakeDocker:
    def __init__(self, label: str) -> None:
        self.images = FakeImages(label)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.lines.append(text)


def test_ca_bundle_is_part_of_the_recipe(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    first.write_text("CA one")
    second.write_text("CA two")
    assert read_recipe(first).digest != read_recipe(second).digest
    assert read_recipe(first).digest == read_recipe(first).digest
    assert "python3-venv" in read_recipe(first).packages


def test_image_with_the_matching_label_is_reused_without_a_word(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    docker: Any = FakeDocker(read_recipe(ca).digest)
    out = Lines()
    assert ensure_stack(Settings(stack_ca_bundle=str(ca)), docker=docker, out=out) == STACK_NAME
    assert out.lines == []
