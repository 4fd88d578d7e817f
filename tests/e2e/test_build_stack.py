"""The stack image: built once from the recipe, reused while the recipe is unchanged."""

from __future__ import annotations

from typing import Any

from builder.stack import RECIPE_LABEL, STACK_NAME, ensure_stack, read_recipe
from shipway.settings import Settings
from tests.e2e.conftest import PrintedOutput


def test_stack_image_is_labelled_with_its_recipe(docker_client: Any, stack_image: str) -> None:
    assert stack_image == STACK_NAME
    labels = docker_client.images.get(stack_image).attrs["Config"]["Labels"]
    assert labels[RECIPE_LABEL] == read_recipe(Settings().stack_ca_bundle).digest


def test_second_ensure_reuses_the_image_silently(docker_client: Any, stack_image: str) -> None:
    out = PrintedOutput()
    assert ensure_stack(Settings(), docker=docker_client, out=out) == stack_image
    assert out.lines == []


def test_stack_runs_as_app_with_python_and_the_host_ca_bundle(
    docker_client: Any, stack_image: str
) -> None:
    script = (
        "id -u; echo $HOME; python3 -c 'import venv, ensurepip, sqlite3, ssl; print(\"stdlib ok\")';"
        " cmp /etc/ssl/certs/ca-certificates.crt /host-ca && echo ca-same; echo $PIP_CERT"
    )
    output = docker_client.containers.run(
        stack_image, ["bash", "-c", script], user="1000:1000", remove=True,
        volumes={Settings().stack_ca_bundle: {"bind": "/host-ca", "mode": "ro"}},
    ).decode()
    assert output.split() == ["1000", "/app", "stdlib", "ok", "ca-same",
                              "/etc/ssl/certs/ca-certificates.crt"]


def test_configured_stack_image_is_used_as_is(docker_client: Any) -> None:
    out = PrintedOutput()
    settings = Settings(stack_image="example/other:1")
    assert ensure_stack(settings, docker=docker_client, out=out) == "example/other:1"
    assert ensure_stack(Settings(), docker=docker_client, out=out, image="mine:2") == "mine:2"
    assert out.lines == []
