"""One real platform (git endpoint, API, router, Docker) shared by the hostile-push tests.

Each test makes its own app (a name no other test or engineer uses) with its own buildpack;
the server's limits are small so that attacks hit them in a second.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.layout import Layout
from shipway.server import RunningServer, start_platform
from shipway.settings import Settings
from tests.conftest import free_port, run_git

DEV = "dev@example.com"
MB = 1000**2
LIMITS = Settings(port=0, build_disk=96 * MB, slug_max_unpacked_size=20 * MB,
                  launch_boot_timeout=20.0, launch_stop_grace=2.0)


@dataclass
class Hostile:
    layout: Layout
    server: RunningServer
    token: str
    settings: Settings

    def remote(self, app: str) -> str:
        return f"http://dev%40example.com:{self.token}@127.0.0.1:{self.server.port}/{app}.git"

    def new_app(self, tmp_path: Path, compile_script: str, *, web: str = "sleep 600") -> str:
        """An app whose buildpack runs ``compile_script`` (``$1`` is /app) and declares ``web``."""
        name = f"hw-{secrets.token_hex(4)}"
        create_app(self.layout, name, DEV)
        pack = tmp_path / f"bp-{name}"
        scripts = {
            "detect": "#!/bin/bash\necho Hostile\n",
            "compile": "#!/bin/bash\n" + compile_script + "\n",
            "release": f"#!/bin/bash\nprintf -- '---\\ndefault_process_types:\\n  web: {web}\\n'\n",
        }
        (pack / "bin").mkdir(parents=True)
        for script, text in scripts.items():
            (pack / "bin" / script).write_text(text)
            (pack / "bin" / script).chmod(0o755)
        Accounts(self.layout).update_app(name, buildpack=str(pack))
        return name

    def push(self, app: str, work: Path) -> subprocess.CompletedProcess[str]:
        return run_git("push", self.remote(app), "master", cwd=work, check=False, timeout=300)

    def ref(self, app: str) -> str | None:
        found = run_git("--git-dir", str(self.layout.repo_path(app)), "rev-parse", "--verify",
                        "-q", "refs/heads/master", cwd=self.layout.home, check=False)
        return found.stdout.strip() or None


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, docker_client: Any,
            stack_image: str) -> Iterator[Hostile]:
    layout = Layout.at(tmp_path_factory.mktemp("hostile") / "home")
    layout.ensure()
    settings = LIMITS.with_overrides(router_port=free_port())
    running = start_platform(layout, settings)
    _, token = Accounts(layout).create_token(DEV)
    yield Hostile(layout, running, token, settings)
    running.stop()
    for container in docker_client.containers.list(
            all=True, filters={"label": f"shipway.home={layout.home}"}):
        with contextlib.suppress(Exception):
            container.remove(force=True)
    for volume in docker_client.volumes.list(filters={"label": f"shipway.home={layout.home}"}):
        with contextlib.suppress(Exception):
            volume.remove(force=True)


def work_tree(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run_git("init", "-q", "-b", "master", cwd=path)
    for name, text in (files or {"README": "hello\n"}).items():
        (path / name).write_text(text)
    run_git("add", "-A", cwd=path)
    run_git("commit", "-q", "-m", "deploy", cwd=path)
    return path


def mounts_under(folder: Path) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(str(folder))]
