"""Benchmark: Shipway's slug compression against ``tar -czf`` on the same ~60 MB tree.

Builds a representative ``app/`` (a ``pip install --target`` of a few popular packages plus many
small source files) once under a temp folder, then in the same run times:

* shipway: the uncompressed tar Docker's get_archive would give -> ``builder.slug.write_slug``
  (sort, normalise, gzip members compressed in threads);
* tar: ``tar -czf`` of the same folder (GNU tar + single-threaded gzip -6).

Prints both, the sizes and the ratio shipway/tar (target <= 1.0).
Usage: ``.venv/bin/python bench/slug_compress.py [--rounds N] [--tree DIR]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder.slug import write_slug  # noqa: E402

PACKAGES = ["flask", "requests", "sqlalchemy", "pygments", "babel", "jinja2", "click"]


def make_tree(root: Path) -> Path:
    app = root / "app"
    site = app / ".venv" / "lib" / "python3.14" / "site-packages"
    if not (site / "flask").exists():
        site.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
                        "--target", str(site), *PACKAGES], check=True)
    src = app / "src"
    if not src.exists():
        for i in range(2000):
            module = src / f"pkg{i // 100}" / f"module_{i}.py"
            module.parent.mkdir(parents=True, exist_ok=True)
            module.write_text("".join(
                f"def function_{j}(value: int) -> int:\n    return value * {j} + {i}\n\n"
                for j in range(40)))
    return app


def tree_size(app: Path) -> tuple[int, int]:
    files = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", default=str(Path(tempfile.gettempdir()) / "shipway-bench-tree"))
    args = parser.parse_args()
    root = Path(args.tree)
    app = make_tree(root)
    count, size = tree_size(app)
    print(f"tree: {count} files, {size / 1e6:.1f} MB ({', '.join(PACKAGES)} + 2000 modules)")

    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "app.tar"
        with tarfile.open(plain, "w", format=tarfile.GNU_FORMAT) as tar:
            tar.add(app, arcname="app")
        best_shipway = best_tar = float("inf")
        shipway_size = tar_size = 0
        for _ in range(args.rounds):
            out = Path(tmp) / "slug.tar.gz"
            started = time.perf_counter()
            with plain.open("rb") as source, out.open("wb") as target:
                write_slug(source, target, threads=os.cpu_count() or 2)
            best_shipway = min(best_shipway, time.perf_counter() - started)
            shipway_size = out.stat().st_size

            reference = Path(tmp) / "ref.tar.gz"
            started = time.perf_counter()
            subprocess.run(["tar", "-czf", str(reference), "-C", str(root), "app"], check=True)
            best_tar = min(best_tar, time.perf_counter() - started)
            tar_size = reference.stat().st_size
    print(f"shipway write_slug: {best_shipway:.2f}s  {shipway_size / 1e6:.1f} MB "
          f"({os.cpu_count()} threads)")
    print(f"tar -czf:           {best_tar:.2f}s  {tar_size / 1e6:.1f} MB")
    print(f"ratio shipway/tar:  {best_shipway / best_tar:.2f} (target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
