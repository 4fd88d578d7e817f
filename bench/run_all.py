"""``make bench``: run every bench script, then write bench/RESULTS.md from their output.

Each script runs in its own process (so one failing does not stop the others) and its stdout
goes into RESULTS.md as is, with the machine's CPU count, the date and the git commit.
Usage: ``.venv/bin/python bench/run_all.py [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = ["push_to_live", "redeploy_and_rollback", "router", "git_transport", "concurrency",
           "slug_compress", "python_install"]
RESULTS = BENCH / "RESULTS.md"


def run(name: str) -> tuple[str, int, float]:
    print(f"==> bench/{name}.py", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(BENCH / f"{name}.py")], cwd=BENCH,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = proc.wait()
    return "".join(lines), code, time.perf_counter() - started


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH,
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=SCRIPTS)
    args = parser.parse_args()
    names = args.only or SCRIPTS
    sections = []
    failed = []
    for name in names:
        output, code, seconds = run(name)
        status = "" if code == 0 else f" (exited with status {code})"
        if code != 0:
            failed.append(name)
        body = output.strip() or "(no output)"
        if name == "slug_compress":  # its output is plain lines, not Markdown
            body = "```\n" + body + "\n```"
        sections.append(f"## bench/{name}.py{status}\n\nran in {seconds:.0f} s\n\n{body}\n")
    targets = [line for s in sections for line in s.splitlines()
               if line.startswith("Target:") or "(target" in line]
    header = [
        "# Shipway benchmark results",
        "",
        "Written by `bench/run_all.py` (`make bench`); do not edit by hand.",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPUs: {os.cpu_count()} ({platform.machine()}, {platform.system()} "
        f"{platform.release()})",
        f"- commit: {commit()}",
        f"- scripts: {', '.join(names)}",
        "",
        "## Targets",
        "",
        *[f"- {line}" for line in targets],
        *([f"- FAILED to run: {', '.join(failed)}"] if failed else []),
        "",
    ]
    RESULTS.write_text("\n".join(header) + "\n" + "\n".join(sections))
    print(f"wrote {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
