"""Stacks: which stack serves which Python, and the recipe digest that decides a rebuild."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from builder.stack import (
    CATALOG,
    RECIPE_LABEL,
    STACK_NAME,
    KeepAlive,
    ensure_stack,
    launch_stack,
    load_catalog,
    read_recipe,
)
from shipway.settings import Settings


class FakeImage:
    def __init__(self, label: str) -> None:
        self.attrs = {"Config": {"Labels": {RECIPE_LABEL: label}}}


class FakeImages:
    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.asked: list[str] = []

    def get(self, name: str) -> FakeImage:
        self.asked.append(name)
        return FakeImage(self.labels[name])


class FakeDocker:
    def __init__(self, labels: dict[str, str]) -> None:
        self.images = FakeImages(labels)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.lines.append(text)


def test_each_python_is_served_by_the_first_stack_listing_it() -> None:
    assert CATALOG.default_python == "3.14"
    assert {v: CATALOG.serving(v).name for v in CATALOG.pythons} == {  # type: ignore[union-attr]
        "3.11": "bookworm", "3.13": "trixie", "3.14": "forky", "3.15": "forky"}
    assert CATALOG.serving("3.12") is None
    assert CATALOG.default.image == STACK_NAME == "shipway/stack:forky-1"
    assert CATALOG.default.build_image == "shipway/stack:forky-1-build"


def test_an_operator_adds_a_stack_by_adding_a_table(tmp_path: Path) -> None:
    extra = tmp_path / "stacks.toml"
    extra.write_text(Path("builder/stack/stacks.toml").read_text() + """
[[stack]]
name = "sid"
suite = "sid"
pythons = ["3.14", "3.16"]
""")
    catalog = load_catalog(extra)
    assert catalog.pythons == ("3.11", "3.13", "3.14", "3.15", "3.16")
    assert catalog.serving("3.16").description == "Debian sid"  # type: ignore[union-attr]
    assert catalog.serving("3.14").name == "forky"  # type: ignore[union-attr]


def test_run_image_has_the_pythons_and_libraries_build_image_the_headers(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    run, build = read_recipe(ca), read_recipe(ca, variant="build")
    assert {"python3.14", "python3.14-venv", "python3.15-venv", "libpq5"} <= set(run.packages)
    assert {"build-essential", "pkg-config", "libpq-dev", "libffi-dev", "libssl-dev",
            "zlib1g-dev", "libxml2-dev", "libxslt1-dev", "libjpeg-dev", "libyaml-dev",
            "python3.14-dev", "python3.15-dev"} <= set(build.packages)
    assert "uv==" in build.tools and "poetry==" in build.tools and "pipenv==" in build.tools
    assert run.digest != build.digest


def test_ca_bundle_is_part_of_the_recipe(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    first.write_text("CA one")
    second.write_text("CA two")
    for variant in ("run", "build"):
        assert read_recipe(first, variant=variant).digest != read_recipe(second, variant=variant).digest  # type: ignore[arg-type]
    assert read_recipe(first).digest == read_recipe(first).digest


def test_images_with_the_matching_labels_are_reused_without_a_word(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    spec = CATALOG.default
    docker: Any = FakeDocker({spec.image: read_recipe(ca, spec).digest,
                              spec.build_image: read_recipe(ca, spec, "build").digest})
    out = Lines()
    settings = Settings(stack_ca_bundle=str(ca))
    assert ensure_stack(settings, docker=docker, out=out, variant="build") == spec.build_image
    assert ensure_stack(settings, docker=docker, out=out) == STACK_NAME
    assert out.lines == []


def test_a_slug_launches_on_the_stack_it_was_built_on(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("CA")
    trixie = CATALOG.serving("3.13")
    assert trixie is not None
    docker: Any = FakeDocker({trixie.image: read_recipe(ca, trixie).digest})
    # even when the server's default moved on to another image
    settings = Settings(stack_ca_bundle=str(ca), stack_image="example/other:1")
    assert launch_stack(settings, trixie.image, docker=docker, out=Lines()) == trixie.image
    assert launch_stack(settings, "mine:2", docker=docker, out=Lines()) == "mine:2"


def test_keepalive_speaks_during_silence_only() -> None:
    out = Lines()
    with KeepAlive(out, "still building x", every=0.5) as alive:
        alive.line("first")
        time.sleep(2.2)
    assert out.lines[0] == "first"
    ticks = [line for line in out.lines[1:] if "... still building x (" in line]
    assert 2 <= len(ticks) <= 4
