"""End-to-end fixtures: the stack image (built once per session), build-container bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from builder.stack import ensure_stack
from hooks.sideband import Collector
from shipway.settings import Settings

PrintedOutput = Collector


@pytest.fixture(scope="session")
def stack_image(docker_client: Any) -> str:
    """Shipway's default stack's run image, its build image made too (debootstrap on first
    use, minutes; reused afterwards)."""
    out = PrintedOutput()
    ensure_stack(Settings(), docker=docker_client, out=out, variant="build")
    image = ensure_stack(Settings(), docker=docker_client, out=out)
    docker_client.images.get(image)
    return image


@pytest.fixture(scope="session")
def python_stacks(docker_client: Any, stack_image: str) -> list[str]:
    """The stacks the Python app tests push to (the default's and 3.13's), built once."""
    from builder.stack import CATALOG

    out = PrintedOutput()
    trixie = CATALOG.serving("3.13")
    assert trixie is not None
    ensure_stack(Settings(), docker=docker_client, out=out, spec=trixie, variant="build")
    return [stack_image, trixie.image]


def build_containers(docker_client: Any, app: str) -> list[Any]:
    """The app's build containers still present, running or not (there should never be any)."""
    return list(docker_client.containers.list(
        all=True, filters={"label": ["shipway.role=build", f"shipway.app={app}"]}))


@pytest.fixture
def app() -> Any:
    """An app record with a name no other test (or engineer) on this Docker engine uses."""
    import secrets

    from shipway.accounts import App

    return App(name="build-" + secrets.token_hex(4), owner="dev@example.com",
               created_at="2026-01-01T00:00:00Z")


def commit_files(repo_dir: Any, files: dict[str, Any], message: str = "deploy") -> tuple[Any, str]:
    """A real git repository holding ``files`` (path -> str/bytes, or ("symlink", target) /
    ("exec", text)) in one commit; returns (dulwich object store, commit sha)."""
    import os
    import subprocess
    from pathlib import Path

    from dulwich.repo import Repo

    root = Path(repo_dir)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    for name, content in files.items():
        path = root / os.fsdecode(name) if isinstance(name, bytes) else root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple) and content[0] == "symlink":
            os.symlink(content[1], path)
            continue
        mode = None
        if isinstance(content, tuple) and content[0] == "exec":
            content, mode = content[1], 0o755
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        if mode:
            path.chmod(mode)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "--allow-empty", "-m", message],
                   check=True)
    sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    return Repo(str(root)).object_store, sha


def example_files(name: str) -> dict[str, Any]:
    """The files of examples/NAME, for commit_files."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "examples" / name
    found: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found[path.relative_to(folder).as_posix()] = ("exec", data.decode()) \
                if path.stat().st_mode & 0o111 else data
    return found
