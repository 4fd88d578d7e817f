"""File names that are not UTF-8: the API and the CLI show them escaped, never a 500."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from builder.slug import SlugArchive, gzip_member
from tests.integration.test_api_support import (  # noqa: F401 - fixtures
    ADMIN,
    ApiPlatform,
    api_platform_fixture,
    login,
    shipway_cli,
)

ODD = "app/caf\udcff.txt"  # the byte 0xff, as a build of a pushed tree keeps it


def odd_slug(folder: Path, layout_app: str, platform: ApiPlatform) -> str:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        folder_info = tarfile.TarInfo("app")
        folder_info.type, folder_info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder_info)
        for name, target in ((ODD, ""), ("app/link\udcfe", "caf\udcff.txt")):
            info = tarfile.TarInfo(name)
            if target:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = 3
                tar.addfile(info, io.BytesIO(b"odd"))
    path = folder / "odd.tar.gz"
    path.write_bytes(gzip_member(raw.getvalue()))
    slug = SlugArchive(platform.layout).add(path, app=layout_app, commit="ab" * 20,
                                            created_at="2026-01-01T00:00:00Z")
    return slug.id


def test_non_utf8_names_are_shown_escaped_by_the_api_and_the_cli(
        api_platform: ApiPlatform, tmp_path: Path) -> None:
    slug = odd_slug(tmp_path, "demo", api_platform)
    answer = api_platform.get(f"/api/slugs/{slug}/contents", who=ADMIN)
    assert answer.status_code == 200, answer.text
    found = {e["path"]: e for e in answer.json()}
    assert set(found) == {"caf\\xff.txt", "link\\xfe"}
    assert found["link\\xfe"]["target"] == "caf\\xff.txt"
    login(api_platform, who=ADMIN)
    listed = shipway_cli("slugs:contents", slug[:8]).stdout.splitlines()
    assert listed == ["caf\\xff.txt", "link\\xfe -> caf\\xff.txt"]
    assert shipway_cli("slugs:cat", slug[:8], "caf\\xff.txt").stdout == "odd"
