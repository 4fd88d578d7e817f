"""Building the example apps: the lines a pusher reads, the slug, and the app answering HTTP."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from builder.build import BuildResult, build
from builder.slug import SlugArchive
from shipway.accounts import App
from shipway.errors import BuildFailed
from shipway.layout import Layout
from shipway.settings import Settings
from tests.e2e.conftest import PrintedOutput, build_containers, commit_files, example_files


def build_example(tmp_path: Path, layout: Layout, docker_client: Any, files: dict[str, Any],
                  app: App, config: dict[str, str] | None = None,
                  settings: Settings | None = None) -> tuple[BuildResult, PrintedOutput]:
    objects, sha = commit_files(tmp_path / "repo", files)
    out = PrintedOutput()
    result = build(objects, sha, app=app, layout=layout, settings=settings or Settings(),
                   config=config or {}, out=out, docker=docker_client)
    return result, out


def slug_names(layout: Layout, result: BuildResult) -> list[str]:
    with tarfile.open(SlugArchive(layout).tarball(result.slug.id)) as tar:
        return tar.getnames()


def run_web(docker_client: Any, stack_image: str, layout: Layout, result: BuildResult,
            env: dict[str, str] | None = None) -> str:
    """Start the slug's web process like a dyno would and return its HTTP body."""
    command = result.slug.process_types["web"]
    script = "for f in /app/.profile.d/*.sh; do [ -f \"$f\" ] && . \"$f\"; done; exec " + command
    box = docker_client.containers.create(
        stack_image, ["bash", "-c", script], user="1000:1000", working_dir="/app",
        environment={"PORT": "5000", **(env or {})}, ports={"5000/tcp": ("127.0.0.1", None)},
        labels={"shipway.role": "test-dyno"},
    )
    try:
        with SlugArchive(layout).tarball(result.slug.id).open("rb") as slug:
            assert box.put_archive("/", slug)
        box.start()
        box.reload()
        port = box.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
        deadline = time.monotonic() + 20
        while True:
            try:
                return requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(box.logs().decode()) from None
                time.sleep(0.2)
    finally:
        box.remove(force=True)


def test_python_requirements_app_builds_a_virtualenv_and_serves(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    result, out = build_example(tmp_path, layout, docker_client,
                                example_files("python-requirements"), app=app)
    exact = result.slug.runtime.removeprefix("Python ")
    assert out.lines[:3] == ["-----> Building on the Debian forky stack",
                             "-----> Python app detected",
                             f"-----> Using Python {exact} (the default; pin it with: "
                             "echo 3.14 > .python-version)"]
    assert exact.startswith("3.14.")
    assert ("-----> Installing dependencies from requirements.txt (uv pip, pip's index rules)"
            in out.lines)
    assert "        + six==1.16.0" in out.lines
    assert "       Procfile declares types -> web" in out.lines
    assert any(line.startswith("-----> Compressing... done, ") for line in out.lines)
    assert result.slug.process_types == {"web": "python app.py"}
    assert not result.reused
    names = slug_names(layout, result)
    assert "app/.profile.d/python.sh" in names
    assert "app/.venv/lib/python3.14/site-packages/six.py" in names
    assert result.log_path.read_text().splitlines() == out.lines
    body = run_web(docker_client, stack_image, layout, result)
    assert "python-requirements example: six 1.16.0" in body

    # a config change rebuilds; unchanged requirements come from the cache, nothing downloaded
    again, out = build_example(tmp_path / "2", layout, docker_client,
                               example_files("python-requirements"), app=app, config={"DEBUG": "1"})
    assert any(line.startswith("-----> Dependencies unchanged; reusing the cached virtualenv (")
               for line in out.lines)
    assert not any("Resolved" in line or "Downloading" in line for line in out.lines)
    assert not again.reused
    assert build_containers(docker_client, app.name) == []


def test_python_plain_app_serves_greeting_and_release(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    result, out = build_example(tmp_path, layout, docker_client, example_files("python-plain"), app=app)
    assert "-----> Python app detected" in out.lines
    assert "       No package manager file; creating a bare virtualenv in /app/.venv" in out.lines
    assert result.slug.process_types == {"web": "python3 app.py"}
    body = run_web(docker_client, stack_image, layout, result,
                   env={"GREETING": "Ahoy", "SHIPWAY_RELEASE": "v7"})
    assert body == "python-plain example: Ahoy (release v7)\n"


def test_static_app_is_served_by_http_server(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    result, out = build_example(tmp_path, layout, docker_client, example_files("static"), app=app)
    assert "-----> Static HTML app detected" in out.lines
    assert "       Procfile declares types -> (none)" in out.lines
    assert "       Default types for buildpack -> web" in out.lines
    assert "static example" in run_web(docker_client, stack_image, layout, result)


def test_procfile_app_runs_its_own_command(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    result, out = build_example(tmp_path, layout, docker_client, example_files("procfile"), app=app)
    assert "-----> Procfile app detected" in out.lines
    assert "procfile example" in run_web(docker_client, stack_image, layout, result)


def test_same_push_again_reuses_the_slug_and_same_tree_gives_same_bytes(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    first, _ = build_example(tmp_path, layout, docker_client, example_files("static"), app=app)
    objects, sha = commit_files(tmp_path / "repo", {}, message="same tree, new commit")
    out = PrintedOutput()
    reused = build(objects, sha, app=app, layout=layout, settings=Settings(), config={},
                   out=out, docker=docker_client)
    assert reused.reused and reused.slug == first.slug
    assert out.lines == [f"-----> No changes since the build of {first.slug.commit[:7]}; "
                         f"reusing slug {first.slug.short_id}"]
    # a config var changes the build key: a real build, yet the same bytes come out
    rebuilt = build(objects, sha, app=app, layout=layout, settings=Settings(),
                    config={"UNUSED": "x"}, out=PrintedOutput(), docker=docker_client)
    assert not rebuilt.reused
    assert rebuilt.slug.id == first.slug.id


def test_unavailable_python_is_refused_before_any_container(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    files = {"runtime.txt": "python-3.12.1\n", "Procfile": "web: python3 app.py\n"}
    objects, sha = commit_files(tmp_path / "repo", files)
    out = PrintedOutput()
    with pytest.raises(BuildFailed) as failed:
        build(objects, sha, app=app, layout=layout, settings=Settings(), config={}, out=out,
              docker=docker_client)
    assert failed.value.message == (
        "Push rejected: Python 3.12.1 (from runtime.txt) is not available; this server has "
        "Python 3.11, 3.13, 3.14, 3.15. Change runtime.txt to one of them.")
    assert failed.value.reason == "pre-receive hook declined"
    assert out.lines == []
    assert SlugArchive(layout).ids() == []
    assert build_containers(docker_client, app.name) == []


def test_collectstatic_can_be_disabled_and_its_failure_fails_the_build(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    # manifest storage refuses a stylesheet that points at a file that is not there
    files = {**example_files("python-django"),
             "hello/static/hello/broken.css": "body { background: url(missing.png); }\n"}
    skipped, out = build_example(tmp_path, layout, docker_client, files, app=app,
                                 config={"DISABLE_COLLECTSTATIC": "1"})
    assert "-----> Skipping Django collectstatic since DISABLE_COLLECTSTATIC is set" in out.lines
    assert not any(name.startswith("app/staticfiles") for name in slug_names(layout, skipped))
    out = PrintedOutput()
    objects, sha = commit_files(tmp_path / "repo", {})
    with pytest.raises(BuildFailed) as failed:
        build(objects, sha, app=app, layout=layout, settings=Settings(), config={}, out=out,
              docker=docker_client)
    assert failed.value.message == "Push rejected, failed to compile Python app."
    assert "-----> $ python manage.py collectstatic --noinput" in out.lines
    assert any("missing.png" in line and "could not be found" in line for line in out.lines)
    assert out.lines[-2:] == [
        " !     Error while running '$ python manage.py collectstatic --noinput'.",
        " !     Its output is above; fix it, or set DISABLE_COLLECTSTATIC=1 to skip it."]


def test_pyproject_dependencies_are_installed(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    files = {
        "pyproject.toml": '[project]\nname = "demo"\nversion = "1"\ndependencies = ["six==1.16.0"]\n',
        "Procfile": "web: python -c 'import six; print(six.__version__)'\n",
    }
    result, out = build_example(tmp_path, layout, docker_client, files, app=app)
    assert "-----> Installing [project].dependencies from pyproject.toml" in out.lines
    assert "app/.venv/lib/python3.14/site-packages/six.py" in slug_names(layout, result)
