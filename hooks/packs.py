"""Pack ingestion: the pushed pack streamed into C git's ``index-pack``, inside the quarantine.

``git index-pack --stdin --fix-thin --strict`` is what ``git receive-pack`` runs with
``receive.fsckObjects=true``: it writes the pack to disk as it arrives (memory stays flat however
big the push), completes thin packs from the repository (the quarantine's alternate) and fscks
every object. ``--max-input-size`` enforces ``receive.max_input_size`` while reading.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

CHUNK = 256 * 1024
# git's fsck report: "error: object <sha>: <msgId>: <text>"
FSCK_LINE = re.compile(r"^error: object ([0-9a-f]{40,64}): (\w+): (.*)$", re.MULTILINE)


class PackRejected(Exception):
    """The pack is not acceptable; ``str(exc)`` is the one line for the pusher."""


class PackTooLarge(PackRejected):
    pass


class PackDiskFull(PackRejected):
    """The data home's filesystem filled up while the pack was written."""


class PackHasBadObject(PackRejected):
    """index-pack's fsck refused an object (a ``.git`` tree entry, a bad commit header...)."""


def git_environment(objects: Path, alternate: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_OBJECT_DIRECTORY": str(objects),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(alternate),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    })
    return env


def index_pack(read: Callable[[int], bytes], *, git_dir: Path, objects: Path,
               alternate: Path, max_input_size: int) -> str:
    """Stream a pack from ``read`` into ``objects/pack``; returns the pack's name (its hash).

    Raises PackTooLarge, PackHasBadObject or PackRejected; a reader's own exceptions (client
    gone, body too large) propagate after index-pack is stopped.
    """
    command = [
        "git", "--git-dir", str(git_dir),
        # dulwich reads the repository too: no .rev files it does not know, no bitmap
        "-c", "pack.writeReverseIndex=false",
        "index-pack", "--stdin", "--fix-thin", "--strict",
        f"--max-input-size={max_input_size}",
    ]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=errors, env=git_environment(objects, alternate),
                                cwd=git_dir)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _feed(read, proc.stdin)
            out = proc.stdout.read().decode("ascii", "replace")
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        errors.seek(0)
        message = errors.read(64 * 1024).decode("utf-8", "replace")
    if code != 0:
        raise _rejection(message, max_input_size)
    kind, _, name = out.strip().partition("\t")
    if kind not in ("pack", "keep") or not name:
        raise PackRejected(f"index-pack gave no pack name ({out.strip()[:80]!r})")
    return name


def _feed(read: Callable[[int], bytes], stdin: object) -> None:
    """Copy the body into index-pack until it ends or index-pack stops reading."""
    assert hasattr(stdin, "write") and hasattr(stdin, "close")
    try:
        while chunk := read(CHUNK):
            stdin.write(chunk)
    except BrokenPipeError:
        pass  # index-pack has finished or failed; its exit status says which
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass


def _rejection(stderr: str, max_input_size: int) -> PackRejected:
    if "pack exceeds maximum allowed size" in stderr:
        return PackTooLarge(f"pack exceeds maximum allowed size ({max_input_size} bytes)")
    if "No space left on device" in stderr or "Disk quota exceeded" in stderr:
        return PackDiskFull("Push rejected: no space left on the server's disk while "
                            "receiving the pack.")
    bad = FSCK_LINE.search(stderr)
    if bad is not None:
        sha, msg_id, text = bad.groups()
        return PackHasBadObject(f"object {sha[:7]} {text.strip()} ({msg_id})")
    lines = [line.removeprefix("fatal: ").removeprefix("error: ").strip()
             for line in stderr.splitlines() if line.strip()]
    reason = (lines[-1] if lines else "index-pack failed").replace("\n", " ")[:200]
    return PackRejected(reason)


__all__ = ["index_pack", "PackRejected", "PackTooLarge", "PackHasBadObject", "PackDiskFull"]
