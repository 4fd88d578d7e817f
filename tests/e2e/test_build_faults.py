"""Bad input and faults during a build: a clear line, no slug stored, no container left."""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from builder.build import build
from builder.slug import SlugArchive
from shipway.accounts import App
from shipway.errors import BuildFailed
from shipway.layout import Layout
from shipway.settings import Settings
from tests.e2e.conftest import PrintedOutput, build_containers, commit_files


def make_buildpack(folder: Path, compile_script: str, name: str = "Fault") -> Path:
    """A custom buildpack folder whose bin/compile runs ``compile_script``."""
    scripts = {
        "detect": f"#!/bin/bash\necho {name}\n",
        "compile": "#!/bin/bash\n" + compile_script + "\n",
        "release": "#!/bin/bash\nprintf -- '---\\ndefault_process_types:\\n  web: sleep 1\\n'\n",
    }
    (folder / "bin").mkdir(parents=True)
    for script, text in scripts.items():
        path = folder / "bin" / script
        path.write_text(text)
        path.chmod(0o755)
    return folder


def run_build(tmp_path: Path, layout: Layout, docker_client: Any, app: App,
              files: dict[str, Any], settings: Settings | None = None,
              config: dict[str, str] | None = None) -> tuple[Any, PrintedOutput]:
    objects, sha = commit_files(tmp_path / "repo", files)
    out = PrintedOutput()
    result = build(objects, sha, app=app, layout=layout, settings=settings or Settings(),
                   config=config or {}, out=out, docker=docker_client)
    return result, out


def assert_rejected(exc: pytest.ExceptionInfo[BuildFailed], message: str, layout: Layout,
                    docker_client: Any, app: App) -> None:
    assert exc.value.message == message
    assert SlugArchive(layout).ids() == []
    assert build_containers(docker_client, app.name) == []


def with_buildpack(app: App, folder: Path) -> App:
    return App(app.name, app.owner, app.created_at, buildpack=str(folder))


def test_compile_that_exits_non_zero_rejects_the_push(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    pack = make_buildpack(tmp_path / "bp", "echo 'compiling...'; echo 'boom' >&2; exit 3")
    with pytest.raises(BuildFailed) as failed:
        run_build(tmp_path, layout, docker_client, with_buildpack(app, pack), {"a.txt": "x"})
    assert_rejected(failed, "Push rejected, failed to compile Fault app.", layout,
                    docker_client, app)


def test_output_over_the_limit_is_cut_with_a_notice_and_the_build_goes_on(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    # 50 MB of output, then a line that must not be shown
    pack = make_buildpack(tmp_path / "bp", "yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | head -c 50000000;"
                          " echo LAST-LINE")
    result, out = run_build(tmp_path, layout, docker_client, with_buildpack(app, pack),
                            {"a.txt": "x"})
    notice = " !     Build output is over 10000000 bytes; the rest is not shown (the build goes on)"
    assert out.lines.count(notice) == 1
    assert "LAST-LINE" not in out.lines
    assert sum(len(line) + 1 for line in out.lines) < 10_200_000
    assert result.log_path.stat().st_size < 10_200_000
    assert SlugArchive(layout).exists(result.slug.id)
    assert build_containers(docker_client, app.name) == []


def test_build_that_never_ends_is_killed_at_the_time_limit(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    pack = make_buildpack(tmp_path / "bp", "echo waiting forever; sleep 3600")
    started = time.monotonic()
    with pytest.raises(BuildFailed) as failed:
        run_build(tmp_path, layout, docker_client, with_buildpack(app, pack), {"a.txt": "x"},
                  settings=Settings(build_timeout=3.0))
    assert time.monotonic() - started < 30
    assert_rejected(failed, "Build timed out after 3 seconds; push rejected.", layout,
                    docker_client, app)


def test_fork_bomb_hits_the_pids_limit_and_the_host_is_fine(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    pack = make_buildpack(tmp_path / "bp", "bomb() { bomb | bomb & }; bomb; sleep 5; exit 1")
    settings = Settings(build_pids=64, build_timeout=8.0)
    with pytest.raises(BuildFailed) as failed:
        run_build(tmp_path, layout, docker_client, with_buildpack(app, pack), {"a.txt": "x"},
                  settings=settings)
    log = next((layout.logs_dir / "builds").iterdir()).read_text()
    assert "fork: retry: Resource temporarily unavailable" in log
    assert failed.value.message in ("Push rejected, failed to compile Fault app.",
                                    "Build timed out after 8 seconds; push rejected.")
    assert_rejected(failed, failed.value.message, layout, docker_client, app)
    assert subprocess.run(["true"], check=False).returncode == 0


def test_symlinks_stay_symlinks_and_are_never_followed(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    files = {"Procfile": "web: sleep 1\n", "passwd": ("symlink", "/etc/passwd"),
             "up": ("symlink", "../../"), "run.sh": ("exec", "#!/bin/sh\necho hi\n")}
    result, out = run_build(tmp_path, layout, docker_client, app, files)
    with tarfile.open(SlugArchive(layout).tarball(result.slug.id)) as tar:
        passwd, up, run = (tar.getmember(f"app/{n}") for n in ("passwd", "up", "run.sh"))
        assert passwd.issym() and passwd.linkname == "/etc/passwd"
        assert up.issym() and up.linkname == "../../"
        assert run.isreg() and run.mode == 0o755
        assert all(m.uid == 1000 and m.mtime == 315532800 for m in tar.getmembers())


def test_file_names_with_newlines_and_non_utf8_bytes_arrive_intact(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    odd = {b"line\nbreak.txt": "newline", b"caf\xe9.txt": "latin-1", "Procfile": "web: x\n"}
    objects, sha = commit_files(tmp_path / "repo", odd)
    # a submodule entry (gitlink) is skipped, not fetched
    subprocess.run(["git", "-C", str(tmp_path / "repo"), "update-index", "--add", "--cacheinfo",
                    f"160000,{sha},vendor/lib"], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "repo"), "commit", "-q", "-m", "sub"], check=True)
    objects, sha = commit_files(tmp_path / "repo", {}, message="again")
    result = build(objects, sha, app=app, layout=layout, settings=Settings(), config={},
                   out=PrintedOutput(), docker=docker_client)
    with tarfile.open(SlugArchive(layout).tarball(result.slug.id), encoding="utf-8",
                      errors="surrogateescape") as tar:
        names = {os.fsencode(n) for n in tar.getnames()}
    assert b"app/line\nbreak.txt" in names
    assert b"app/caf\xe9.txt" in names
    assert not any(n.startswith(b"app/vendor") for n in names)


def test_empty_tree_has_no_language(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    with pytest.raises(BuildFailed) as failed:
        run_build(tmp_path, layout, docker_client, app, {})
    assert_rejected(failed, "No default language could be detected for this app.", layout,
                    docker_client, app)


def test_malformed_procfile_names_the_line(
    tmp_path: Path, layout: Layout, docker_client: Any, app: App
) -> None:
    files = {"Procfile": "web: python3 app.py\nthis line has no colon\n", "app.py": ""}
    with pytest.raises(BuildFailed) as failed:
        run_build(tmp_path, layout, docker_client, app, files)
    assert_rejected(failed, 'Procfile line 2 is not "name: command": \'this line has no colon\'',
                    layout, docker_client, app)


def test_slug_over_the_maximum_size_is_rejected_and_not_stored(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    files = {"index.html": os.urandom(200_000)}
    with pytest.raises(BuildFailed) as failed:
        run_build(tmp_path, layout, docker_client, app, files,
                  settings=Settings(slug_max_size=100_000))
    assert failed.value.message == "Compiled slug size: 0.2MB+ is too large (max is 0.1MB)."
    assert_rejected(failed, failed.value.message, layout, docker_client, app)
    assert [p.name for p in layout.slugs_dir.iterdir()] == []


def test_slugignore_drops_files_before_the_build(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    files = {".slugignore": "*.md\n/docs\n", "index.html": "hi", "README.md": "x",
             "docs/guide.txt": "x", "sub/notes.md": "x", "sub/keep.txt": "x"}
    result, _ = run_build(tmp_path, layout, docker_client, app, files)
    with tarfile.open(SlugArchive(layout).tarball(result.slug.id)) as tar:
        names = set(tar.getnames())
    assert {"app/index.html", "app/sub/keep.txt"} <= names
    assert not names & {"app/README.md", "app/docs", "app/docs/guide.txt", "app/sub/notes.md",
                        "app/.slugignore"}


def test_buildpack_from_a_git_repository(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    pack = make_buildpack(tmp_path / "bp", "echo '       compiled by the git buildpack'",
                          name="Gitpack")
    subprocess.run(["git", "init", "-q", "-b", "main", str(pack)], check=True)
    subprocess.run(["git", "-C", str(pack), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(pack), "commit", "-q", "-m", "bp"], check=True)
    url = f"file://{pack}"
    custom = App(app.name, app.owner, app.created_at, buildpack=url)
    result, out = run_build(tmp_path, layout, docker_client, custom, {"a.txt": "x"})
    assert "-----> Gitpack app detected" in out.lines
    assert "       compiled by the git buildpack" in out.lines
    assert result.slug.buildpack == url
    assert result.slug.process_types == {"web": "sleep 1"}


def test_configured_buildpack_that_does_not_detect(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    pack = make_buildpack(tmp_path / "bp", "true")
    (pack / "bin" / "detect").write_text("#!/bin/bash\nexit 1\n")
    with pytest.raises(BuildFailed) as failed:
        run_build(tmp_path, layout, docker_client, with_buildpack(app, pack), {"a.txt": "x"})
    assert_rejected(failed, f"App not compatible with buildpack: {pack}", layout,
                    docker_client, app)


def test_config_vars_arrive_in_env_dir_and_their_values_are_redacted(
    tmp_path: Path, layout: Layout, docker_client: Any, stack_image: str, app: App
) -> None:
    script = ('[ "$(cat "$3/API_TOKEN")" = "s3cret-t0ken" ] && echo "       token file ok";'
              ' echo "       MODE=$(cat "$3/MODE") API_TOKEN=$(cat "$3/API_TOKEN")"')
    result, out = run_build(tmp_path, layout, docker_client,
                            with_buildpack(app, make_buildpack(tmp_path / "bp", script)),
                            {"a.txt": "x"}, config={"API_TOKEN": "s3cret-t0ken", "MODE": "prod"})
    assert "       token file ok" in out.lines
    assert "       MODE=prod API_TOKEN=[REDACTED]" in out.lines
    assert "s3cret-t0ken" not in result.log_path.read_text()
