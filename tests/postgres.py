"""A private PostgreSQL server for tests: Debian's binaries, a temp data folder, a unix socket
only (no TCP), scram passwords, run as the ``postgres`` system user."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PostgresServer:
    root: Path
    socket_dir: Path
    port: int
    password: str
    bindir: Path

    @property
    def admin_url(self) -> str:
        return (f"postgresql://postgres:{self.password}@/postgres"
                f"?host={self.socket_dir}&port={self.port}")

    def stop(self) -> None:
        _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m",
                      "immediate", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def find_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if os.getuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def start_postgres(port: int) -> PostgresServer:
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (scripts/host-setup installs it)")
    root = Path(tempfile.mkdtemp(prefix="shipway-pg-"))
    os.chmod(root, 0o755)
    socket_dir = root / "socket"
    socket_dir.mkdir(mode=0o755)
    password = secrets.token_urlsafe(16)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if os.getuid() == 0:
        pg = pwd.getpwnam("postgres")
        for path in (root, socket_dir, pwfile):
            os.chown(path, pg.pw_uid, pg.pw_gid)
    _as_postgres([str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                  f"--pwfile={pwfile}", "--auth-local=scram-sha-256",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
    options = f"-k {socket_dir} -p {port} -c listen_addresses='' -c fsync=off"
    _as_postgres([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", options,
                  "-l", str(root / "log"), "-w", "start"])
    return PostgresServer(root=root, socket_dir=socket_dir, port=port, password=password,
                          bindir=bindir)
