"""Python dependency installs: a cold build's install against ``uv pip install`` of the same
locked set in a container of the same build image, and an unchanged-lock rebuild.

The locked set is a typical Django app's (15 packages, wheels). Each package manager gets the
same pins: requirements.txt as is; uv.lock, poetry.lock and Pipfile.lock are written by the
tools in the build image at the start of the run. A cold build is the first build of a new app
(empty cache); the rebuild changes a config var only, so the lock is unchanged. The times are
what the Python buildpack prints for its install step ("Dependencies installed in N ms",
"reusing the cached virtualenv (N ms)"); the baseline is timed the same way, in-container,
with the same bytecode compilation (``--compile-bytecode``; without it is shown too).
Usage: ``.venv/bin/python bench/python_install.py`` (ROUNDS=N to change the 3 rounds).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import docker_client, ensure_stack_image, median, table, target

from builder.build import build
from builder.stack import CATALOG
from shipway.accounts import App
from shipway.layout import Layout
from shipway.settings import Settings

ROUNDS = int(os.environ.get("ROUNDS", "3"))
PINS = """asgiref==3.13.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
dj-database-url==3.1.2
django==6.1.3
gunicorn==27.0.1
idna==3.20
lxml==6.1.3
pillow==13.0.0
psycopg2-binary==2.9.13
pyyaml==6.0.4
requests==2.34.2
sqlparse==0.6.1
urllib3==2.8.0
whitenoise==6.12.0
""".split()
PROCFILE = "web: gunicorn app:app\n"
INSTALLED = re.compile(r"Dependencies installed in (\d+) ms")
REUSED = re.compile(r"reusing the cached virtualenv \((\d+) ms\)")
MANAGERS = ("pip", "uv", "poetry", "pipenv")


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.lines.append(" !     " + text)


def project_files(manager: str) -> dict[str, str]:
    """The app's files before locking (the lock is added by ``lock``)."""
    deps = ", ".join(f'"{pin}"' for pin in PINS)
    project = (f'[project]\nname = "bench"\nversion = "0"\nrequires-python = ">=3.14"\n'
               f"dependencies = [{deps}]\n")
    if manager == "pip":
        return {"requirements.txt": "\n".join(PINS) + "\n", "Procfile": PROCFILE}
    if manager == "uv":
        return {"pyproject.toml": project, ".python-version": "3.14\n", "Procfile": PROCFILE}
    if manager == "poetry":
        return {"pyproject.toml": project + "\n[tool.poetry]\npackage-mode = false\n",
                "Procfile": PROCFILE}
    packages = "\n".join(f'{p.split("==")[0]} = "=={p.split("==")[1]}"' for p in PINS)
    return {"Pipfile": f'[[source]]\nurl = "https://pypi.org/simple"\nverify_ssl = true\n'
                       f'name = "pypi"\n\n[packages]\n{packages}\n\n[requires]\n'
                       f'python_version = "3.14"\n', "Procfile": PROCFILE}


def in_build_image(client: Any, files: dict[str, str], script: str,
                   fetch: str = "") -> tuple[str, str]:
    """Run ``script`` as the build user in /app of a build-image container holding ``files``;
    returns its output and the text of ``fetch`` (a file under /app) afterwards."""
    box = client.containers.create(
        CATALOG.default.build_image, ["bash", "-c", script], user="1000:1000",
        working_dir="/app", environment={"UV_PYTHON_DOWNLOADS": "never", "HOME": "/tmp",
                                         "POETRY_VIRTUALENVS_CREATE": "false"},
        mem_limit="2g", nano_cpus=int(2e9), labels={"shipway.role": "bench"})
    try:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size, info.uid, info.gid = len(data), 1000, 1000
                tar.addfile(info, io.BytesIO(data))
        box.put_archive("/app", buffer.getvalue())
        box.start()
        code = box.wait()["StatusCode"]
        output = box.logs().decode()
        if code != 0:
            raise RuntimeError(f"{script!r} failed: {output[-1500:]}")
        fetched = ""
        if fetch:
            stream, _ = box.get_archive(f"/app/{fetch}")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                handle = tar.extractfile(member) if member else None
                fetched = handle.read().decode() if handle else ""
        return output, fetched
    finally:
        box.remove(force=True)


def lock(client: Any, manager: str, files: dict[str, str]) -> dict[str, str]:
    tools = "/opt/shipway/bin"
    command, lock_file = {
        "pip": ("true", ""),
        "uv": (f"{tools}/uv lock -q", "uv.lock"),
        "poetry": (f"{tools}/poetry lock -q", "poetry.lock"),
        "pipenv": (f"WORKON_HOME=/tmp/venvs {tools}/pipenv lock >/dev/null 2>&1",
                   "Pipfile.lock"),
    }[manager]
    if not lock_file:
        return files
    _, text = in_build_image(client, files, command, fetch=lock_file)
    return {**files, lock_file: text}


def baseline_ms(client: Any, compile_bytecode: bool) -> int:
    """``uv pip install`` of the pins into a new virtualenv, cold uv cache, timed inside."""
    flag = "--compile-bytecode" if compile_bytecode else ""
    script = ("uv=/opt/shipway/bin/uv; export UV_CACHE_DIR=/tmp/uv-cache; "
              "start=$(date +%s%N); $uv venv -q /tmp/venv --python python3.14 && "
              f"VIRTUAL_ENV=/tmp/venv $uv pip install -q {flag} -r requirements.txt && "
              "echo took $(( ($(date +%s%N) - start) / 1000000 ))")
    output, _ = in_build_image(client, {"requirements.txt": "\n".join(PINS) + "\n"}, script)
    return int(output.split("took")[-1].split()[0])


def commit(root: Path, files: dict[str, str], note: str) -> tuple[Any, str]:
    from dulwich.repo import Repo

    for name, text in files.items():
        (root / name).write_text(text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e", "GIT_CONFIG_NOSYSTEM": "1"}
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", note], check=True, env=env)
    sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True, env=env,
                         capture_output=True, text=True).stdout.strip()
    return Repo(str(root)).object_store, sha


def shipway_build(client: Any, files: dict[str, str]) -> tuple[int, int, float, float]:
    """Cold build then unchanged-lock rebuild of a new app: (install ms, reuse ms, both walls)."""
    with tempfile.TemporaryDirectory(prefix="bench-py-") as tmp:
        layout = Layout.at(Path(tmp) / "home")
        layout.ensure()
        app = App(name="bench-py-" + secrets.token_hex(3), owner="b@e",
                  created_at="2026-01-01T00:00:00Z")
        objects, sha = commit(Path(tmp), files, "bench")
        walls, found = [], []
        for config, pattern in (({}, INSTALLED), ({"BENCH": "1"}, REUSED)):
            out = Lines()
            started = time.perf_counter()
            build(objects, sha, app=app, layout=layout, settings=Settings(), config=config,
                  out=out, docker=client)
            walls.append(time.perf_counter() - started)
            hits = [pattern.search(line) for line in out.lines]
            match = next((m for m in hits if m), None)
            if match is None:
                raise RuntimeError("no timing line in the build output:\n" + "\n".join(out.lines))
            found.append(int(match.group(1)))
        return found[0], found[1], walls[0], walls[1]


def main() -> None:
    ensure_stack_image()
    client = docker_client()
    try:
        projects = {m: lock(client, m, project_files(m)) for m in MANAGERS}
        base: list[int] = []
        base_plain: list[int] = []
        runs: dict[str, list[tuple[int, int, float, float]]] = {m: [] for m in MANAGERS}
        for _ in range(ROUNDS):
            base.append(baseline_ms(client, compile_bytecode=True))
            base_plain.append(baseline_ms(client, compile_bytecode=False))
            for manager in MANAGERS:
                runs[manager].append(shipway_build(client, projects[manager]))
    finally:
        client.close()
    floor = median(base)
    print(f"Locked set: {len(PINS)} packages (a Django app's); {ROUNDS} rounds, medians; "
          f"stack {CATALOG.default.build_image}.\n")
    print(f"Baseline `uv pip install --compile-bytecode` into a new virtualenv, cold cache: "
          f"{floor / 1000:.2f} s (without --compile-bytecode: {median(base_plain) / 1000:.2f} s)"
          "\n")
    rows = []
    for manager in MANAGERS:
        cold = median([r[0] for r in runs[manager]])
        reuse = median([r[1] for r in runs[manager]])
        rows.append((manager, cold / 1000, cold / floor, reuse / 1000,
                     median([r[2] for r in runs[manager]]),
                     median([r[3] for r in runs[manager]])))
    print(table(["package manager", "cold install s", "x uv pip install",
                 "unchanged-lock install s", "cold build wall s", "rebuild wall s"], rows))
    print()
    for manager, _, ratio, reuse, _, _ in rows:
        print(target(f"{manager} cold install {ratio:.2f}x uv pip install (target <= 1.3x)",
                     ratio <= 1.3))
        print(target(f"{manager} unchanged lock reuses the environment in {reuse:.3f} s "
                     "(target < 1 s)", reuse < 1.0))


if __name__ == "__main__":
    main()
