"""Where a release's launch output goes: the user, and its log file, with config values hidden.

The log file (``logs/APP/vN.log``, or the build log a deploy goes on with) is made readable by
Shipway's user only before anything is written to it.
"""

from __future__ import annotations

from pathlib import Path

from hooks.pipeline import Output
from release.launch import TeeOutput
from release.records import Release
from shipway.files import private_file
from shipway.redact import RedactedOutput, secrets_of


def release_output(out: Output, path: Path, release: Release) -> Output:
    private_file(path)
    return RedactedOutput(TeeOutput(out, path), secrets_of(release.config))


__all__ = ["release_output"]
