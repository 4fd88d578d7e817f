"""Real Python apps pushed unmodified: each Python version, each package manager, Django.

One platform (server, router) serves every app of this module; each test pushes an example
with the real ``git`` and reads what the pusher reads, then asks the app over HTTP.
"""

from __future__ import annotations

import http.client
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from builder.slug import SlugArchive
from release.store import ReleaseStore
from release.testing import remove_containers
from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.cli import main
from shipway.layout import Layout
from shipway.server import RunningServer, start_platform
from shipway.settings import Settings
from tests.conftest import free_port, run_git

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Platform:
    layout: Layout
    server: RunningServer
    settings: Settings
    token: str
    apps: list[str]

    def remote(self, app: str) -> str:
        return f"http://dev%40example.com:{self.token}@127.0.0.1:{self.server.port}/{app}.git"

    def get(self, app: str, path: str = "/") -> tuple[int, str]:
        deadline = time.monotonic() + 15
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", self.settings.router_port, timeout=10)
            try:
                conn.request("GET", path, headers={"Host": f"{app}.localhost"})
                resp = conn.getresponse()
                status, body = resp.status, resp.read().decode()
            finally:
                conn.close()
            if status < 500 or time.monotonic() > deadline:
                return status, body
            time.sleep(0.2)

    def push(self, tmp_path: Path, example: str, extra: dict[str, str] | None = None,
             app: str | None = None) -> tuple[str, int, str]:
        """Create an app, push examples/EXAMPLE (plus ``extra`` files) to it."""
        name = app or f"py-{example.removeprefix('python-')}-{len(self.apps)}"[:30]
        if name not in self.apps:
            create_app(self.layout, name, "dev@example.com")
            self.apps.append(name)
        work = tmp_path / example
        if (EXAMPLES / example).is_dir():
            shutil.copytree(EXAMPLES / example, work)
        else:
            work.mkdir()
        for rel, text in (extra or {}).items():
            (work / rel).write_text(text)
        run_git("init", "-q", "-b", "master", cwd=work)
        run_git("add", "-A", cwd=work)
        run_git("commit", "-q", "-m", f"{example} example", cwd=work)
        pushed = run_git("push", self.remote(name), "master", cwd=work, check=False)
        return name, pushed.returncode, pushed.stderr


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, git_bin: str,
             python_stacks: list[str]) -> Iterator[Platform]:
    layout = Layout.at(tmp_path_factory.mktemp("python-apps") / "home")
    layout.ensure()
    settings = Settings(port=0, router_port=free_port(), launch_boot_timeout=60.0,
                        launch_stop_grace=2.0)
    server = start_platform(layout, settings)
    _, token = Accounts(layout).create_token("dev@example.com")
    live = Platform(layout, server, settings, token, [])
    yield live
    server.stop()
    for app in live.apps:
        remove_containers(docker_client, app)
    for volume in docker_client.volumes.list(filters={"label": f"shipway.home={layout.home}"}):
        volume.remove(force=True)


def remote_lines(stderr: str) -> list[str]:
    return [line.removeprefix("remote: ").rstrip() for line in stderr.splitlines()
            if line.startswith("remote: ")]


def slug_of(live: Platform, app: str) -> Any:
    release = ReleaseStore(live.layout).list(app)[-1]
    return SlugArchive(live.layout).get(release.slug)


def test_django_on_the_default_python_serves_its_hashed_static_file(
    platform: Platform, tmp_path: Path
) -> None:
    app, code, err = platform.push(tmp_path, "python-django")
    assert code == 0, err
    lines = remote_lines(err)
    assert "-----> Building on the Debian forky stack" in lines
    assert re.search(r"-----> Using Python 3\.14\.\d+ \(the default; pin it with: "
                     r"echo 3\.14 > \.python-version\)", err)
    assert "-----> Installing dependencies from requirements.txt (uv pip, pip's index rules)" \
        in lines
    assert "-----> $ python manage.py collectstatic --noinput" in lines
    assert any("static file copied to '/app/staticfiles', 1 post-processed." in line
               for line in lines)
    status, page = platform.get(app)
    assert status == 200 and "Hello from Django" in page
    hashed = re.search(r'href="(/static/hello/site\.[0-9a-f]{12}\.css)"', page)
    assert hashed, page
    status, css = platform.get(app, hashed.group(1))
    assert status == 200 and "rebeccapurple" in css
    slug = slug_of(platform, app)
    assert slug.stack == "shipway/stack:forky-1" and re.fullmatch(r"Python 3\.14\.\d+",
                                                                    slug.runtime)


def test_psycopg2_builds_from_source_and_imports(platform: Platform, tmp_path: Path) -> None:
    app, code, err = platform.push(tmp_path, "python-psycopg2")
    assert code == 0, err
    assert "Building wheel" in err or "Built psycopg2" in err, err
    status, body = platform.get(app)
    assert status == 200 and re.fullmatch(r"psycopg2 2\.9\.\d+ libpq \d+\n", body), body


def test_python_313_by_runtime_txt_runs_on_trixie(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, code, err = platform.push(tmp_path, "python-runtime-txt")
    assert code == 0, err
    lines = remote_lines(err)
    assert "-----> Building on the Debian trixie stack" in lines
    assert (" !     Warning: runtime.txt is deprecated; put 3.13 in a .python-version file "
            "instead (and delete runtime.txt).") in lines
    assert re.search(r"-----> Using Python 3\.13\.\d+ \(from runtime\.txt\)", err)
    status, body = platform.get(app)
    assert status == 200 and body.startswith("Python 3.13.")
    slug = slug_of(platform, app)
    assert slug.stack == "shipway/stack:trixie-1"
    capsys.readouterr()
    assert main(["--home", str(platform.layout.home), "releases:info", "-a", app]) == 0
    info = capsys.readouterr().out.splitlines()
    assert f"Stack:   Debian trixie (shipway/stack:trixie-1), {slug.runtime}" in info
    assert re.fullmatch(r"Python 3\.13\.\d+", slug.runtime)


def test_python_315_by_python_version(platform: Platform, tmp_path: Path) -> None:
    app, code, err = platform.push(tmp_path, "python-315")
    assert code == 0, err
    assert re.search(r"-----> Using Python 3\.15\.\d+ \(from \.python-version\)", err)
    status, body = platform.get(app)
    assert status == 200 and body.startswith("Python 3.15.")


def test_patch_pin_gets_the_stacks_patch_and_says_so(platform: Platform, tmp_path: Path) -> None:
    app, code, err = platform.push(tmp_path, "python-315", {".python-version": "3.15.99\n"})
    assert code == 0, err
    exact = slug_of(platform, app).runtime.removeprefix("Python ")
    assert (f"remote:        Python 3.15.99 was requested; Shipway serves the 3.15 patch that "
            f"Debian forky ships: {exact}") in err


def test_uv_project(platform: Platform, tmp_path: Path) -> None:
    app, code, err = platform.push(tmp_path, "python-uv")
    assert code == 0, err
    assert "remote: -----> Installing dependencies from uv.lock (uv sync --locked)" in err
    assert "pytest" not in err  # the dev group is not installed
    status, body = platform.get(app)
    assert status == 200 and re.fullmatch(r"uv project: flask 3\.\d+\.\d+ on Python 3\.14\.\d+\n",
                                          body), body


def test_poetry_project_in_package_mode_false(platform: Platform, tmp_path: Path) -> None:
    app, code, err = platform.push(tmp_path, "python-poetry")
    assert code == 0, err
    assert "remote: -----> Installing dependencies from poetry.lock" in err
    assert "pytest" not in err
    status, body = platform.get(app)
    assert status == 200 and body.startswith("poetry project: bottle 0.13.")


def test_pipenv_project_on_its_locked_python(platform: Platform, tmp_path: Path) -> None:
    app, code, err = platform.push(tmp_path, "python-pipenv")
    assert code == 0, err
    assert re.search(r"-----> Using Python 3\.13\.\d+ \(from Pipfile\.lock\)", err)
    assert "remote: -----> Installing dependencies from Pipfile.lock" in err
    status, body = platform.get(app)
    assert status == 200 and re.fullmatch(r"pipenv project: waitress 3\.\d+\.\d+ on Python "
                                          r"3\.13\.\d+\n", body), body


@pytest.mark.parametrize(("example", "extra", "line"), [
    ("python-pipenv", {"requirements.txt": "waitress\n"},
     "Push rejected: multiple Python package manager files were found: requirements.txt (pip), "
     "Pipfile.lock (Pipenv); keep exactly one."),
    ("python-315", {".python-version": "3.12\n"},
     "Push rejected: Python 3.12 (from .python-version) is not available; this server has "
     "Python 3.11, 3.13, 3.14, 3.15. Change .python-version to one of them."),
    ("node", {"package.json": '{"name": "web", "scripts": {"start": "node index.js"}}\n',
              "index.js": "require('http').createServer().listen(process.env.PORT)\n",
              "Procfile": "web: node index.js\n"},
     "Push rejected: this is a Node.js app (package.json), which Shipway cannot build; "
     "Shipway builds Python apps, static sites (index.html) and apps with a Procfile."),
])
def test_refusals_are_one_line_and_change_nothing(
    platform: Platform, tmp_path: Path, example: str, extra: dict[str, str], line: str
) -> None:
    app, code, err = platform.push(tmp_path, example, extra)
    assert code != 0
    assert [text for text in remote_lines(err) if text.startswith(" !")] == [" !     " + line]
    assert "[remote rejected] master -> master (pre-receive hook declined)" in err
    assert ReleaseStore(platform.layout).versions(app) == [1]
