"""A build's disk: one size-limited filesystem for everything a build writes.

Docker 20.10 with fuse-overlayfs cannot cap a container's writable layer (``storage_opt size``
needs xfs project quotas), and a tmpfs mount is invisible to the archive API the builder fills
and empties the container with. So each build gets an ext4 image of ``build.disk`` bytes
(sparse: the host pays only what the build writes), mounted on a loop device under
``run/builds/ID/`` with ``nosuid,nodev``; its ``app/`` and ``tmp/`` are bind-mounted at /app and
/tmp. Over the limit the build sees ENOSPC, the push gets one line, and at the end the image is
unmounted and deleted: the host disk is as before.

Mounting needs root (as the Docker socket effectively does). Without it builds run unlimited
and the server logs ``build.disk_unlimited`` once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from shipway.log import get as get_log

BUILD_UID = 1000
# the build counts as out of disk when less than this is left
FULL_MARGIN = 4 << 20
_warned: list[bool] = []


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


class BuildDisk:
    """``with BuildDisk(folder, size) as disk:`` ``disk.binds`` go to the build container."""

    def __init__(self, folder: Path, size: int) -> None:
        self.folder = folder
        self.size = size
        self.id = secrets.token_hex(6)
        self.image = folder / f"{self.id}.img"
        self.mount = folder / self.id
        self.mounted = False

    def __enter__(self) -> BuildDisk:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with self.image.open("wb") as fh:
                fh.truncate(self.size)
            _run("mkfs.ext4", "-q", "-F", "-m", "0", "-i", "8192", "-O", "^has_journal",
                 "-E", f"root_owner={BUILD_UID}:{BUILD_UID}", str(self.image))
            self.mount.mkdir(mode=0o700)
            _run("mount", "-o", "loop,nosuid,nodev", str(self.image), str(self.mount))
            self.mounted = True
            for name in ("app", "tmp"):
                path = self.mount / name
                path.mkdir(mode=0o755)
                os.chown(path, BUILD_UID, BUILD_UID)
            shutil.rmtree(self.mount / "lost+found", ignore_errors=True)
        except (OSError, subprocess.SubprocessError) as exc:
            self.__exit__(None, None, None)
            if not _warned:
                _warned.append(True)
                get_log().warning("build.disk_unlimited", error=str(exc)[:300],
                                  hint="builds need root to mount their size-limited disk")
        return self

    @property
    def binds(self) -> dict[str, dict[str, str]]:
        if not self.mounted:
            return {}
        return {str(self.mount / "app"): {"bind": "/app", "mode": "rw"},
                str(self.mount / "tmp"): {"bind": "/tmp", "mode": "rw"}}

    @property
    def full(self) -> bool:
        """True when the build used (nearly) all of its disk."""
        if not self.mounted:
            return False
        stats = os.statvfs(self.mount)
        return stats.f_bavail * stats.f_frsize < FULL_MARGIN or stats.f_favail == 0

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.mounted:
            try:
                _run("umount", str(self.mount))
            except subprocess.SubprocessError:
                # still busy (a container not yet gone): detach now, freed when released
                with contextlib.suppress(subprocess.SubprocessError):
                    _run("umount", "-l", str(self.mount))
            self.mounted = False
        with contextlib.suppress(OSError):
            self.mount.rmdir()  # empty once unmounted; never a recursive delete through a mount
        self.image.unlink(missing_ok=True)


def clean_build_disks(folder: Path) -> list[str]:
    """Unmount and delete build disks a crash left under ``folder`` (at server start)."""
    if not folder.is_dir():
        return []
    removed: list[str] = []
    mounts = _mount_points()
    for path in sorted(folder.iterdir()):
        if path.is_dir() and not path.is_symlink():
            if str(path) in mounts:
                with contextlib.suppress(subprocess.SubprocessError):
                    _run("umount", "-l", str(path))
            with contextlib.suppress(OSError):
                path.rmdir()
                removed.append(path.name)
        elif path.suffix == ".img":
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _mount_points() -> set[str]:
    found: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) > 4:
                found.add(fields[4].replace("\\040", " "))
    return found


__all__ = ["BuildDisk", "clean_build_disks"]
