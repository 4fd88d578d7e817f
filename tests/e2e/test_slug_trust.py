"""A slug is data: one holding what no dyno may get is refused at launch, whoever wrote it,
before any volume is made. Real server, rollback through the API, real Docker.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import requests

from builder.slug import MEMBER_SIZE, SlugArchive, gzip_member
from release.launch import slug_volume_name
from release.store import ReleaseStore
from tests.e2e.hostile import DEV, Hostile, hostile  # noqa: F401


def entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644,
          data: bytes = b"", link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, len(data), link
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, data


def hostile_slug(folder: Path, bad: tuple[tarfile.TarInfo, bytes]) -> Path:
    """A slug as a forger would write it: a harmless app (6 MB of it, so the bad entry sits in
    the second of the gzip members the builder writes) plus one bad entry."""
    path = folder / "forged.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in (entry("app", tarfile.DIRTYPE, 0o755),
                           entry("app/app.py", data=b"print('hi')\n"),
                           entry("app/data.bin", data=os.urandom(6 << 20)), bad):
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    path.write_bytes(b"".join(gzip_member(raw[i:i + MEMBER_SIZE])
                              for i in range(0, len(raw), MEMBER_SIZE)))
    return path


BAD = {
    "setuid": (entry("app/bin-su", mode=0o4755, data=b"\x7fELF"),
               "has a setuid or setgid file: 'app/bin-su'."),
    "setgid": (entry("app/bin-sg", mode=0o2755, data=b"\x7fELF"),
               "has a setuid or setgid file: 'app/bin-sg'."),
    "device": (entry("app/mem", tarfile.CHRTYPE, 0o666),
               "has a device, fifo or other special file: 'app/mem'."),
    "fifo": (entry("app/pipe", tarfile.FIFOTYPE), "has a device, fifo or other special file"),
    "hard link": (entry("app/passwd", tarfile.LNKTYPE, link="app/app.py"),
                  "has a hard link: 'app/passwd'."),
    "absolute": (entry("/etc/cron.d/x", data=b"x"), "has an entry outside /app: '/etc/cron.d/x'."),
    "dot-dot": (entry("app/../../etc/x", data=b"x"), "has an entry outside /app"),
    "outside app": (entry("etc/shadow", data=b"x"), "has an entry outside /app: 'etc/shadow'."),
}


def test_forged_slugs_are_refused_before_any_volume_is_made(
        hostile: Hostile, tmp_path: Path, docker_client: Any) -> None:  # noqa: F811
    app = hostile.new_app(tmp_path, "true")
    store = ReleaseStore(hostile.layout)
    archive = SlugArchive(hostile.layout)
    for what, (bad, message) in BAD.items():
        folder = tmp_path / what.replace(" ", "-")
        folder.mkdir()
        slug = archive.add(hostile_slug(folder, bad), app=app, commit="f0" * 20,
                           created_at="2026-01-01T00:00:00Z",
                           process_types={"web": "python3 -m http.server $PORT"})
        target = store.create(app, description="Deploy forged", user=DEV, status="succeeded",
                              slug=slug.id, commit=slug.commit)
        answer = requests.post(f"{hostile.server.url}/api/apps/{app}/releases",
                               json={"release": target.version}, auth=(DEV, hostile.token),
                               timeout=60)
        assert answer.status_code == 201, (what, answer.text)
        done = answer.json()
        assert done["status"] == "failed", what
        shown = "\n".join(done["output_lines"])
        assert f"failed to start: Slug {slug.id[:12]} {message}" in shown, (what, shown)
        assert "no release is running" in shown
        assert store.get(app, done["version"]).status == "failed"
        volumes = docker_client.volumes.list(filters={"name": slug_volume_name(slug.id)})
        assert volumes == [], what
    assert docker_client.containers.list(all=True, filters={
        "label": [f"shipway.app={app}"]}) == []
