"""git push / fetch / clone against a real Shipway server, as a developer sees it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import run_git
from tests.integration.conftest import Platform, commit, make_repo, remote_ref


def test_push_shows_stage_lines_and_moves_branch(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    run_git("remote", "add", "platform", platform.remote("demo"), cwd=work)
    result = run_git("push", "platform", "master", cwd=work)
    head = run_git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert f"remote: -----> Received master at {head[:7]}" in result.stderr
    assert "* [new branch]      master -> master" in result.stderr
    assert remote_ref(platform, "demo") == head


def test_clone_and_fetch_need_access_and_work(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    run_git("push", platform.remote("demo"), "master", cwd=work)
    clone = tmp_path / "clone"
    run_git("clone", "-q", platform.remote("demo"), str(clone), cwd=tmp_path)
    assert (clone / "README").read_text() == "hello\n"
    new = commit(work, "two.txt", "2\n", "second")
    run_git("push", "-q", platform.remote("demo"), "master", cwd=work)
    run_git("fetch", "-q", "origin", cwd=clone)
    assert run_git("rev-parse", "origin/master", cwd=clone).stdout.strip() == new
    denied = run_git("clone", "-q", platform.remote("demo", token="wrong"),
                     str(tmp_path / "nope"), cwd=tmp_path, check=False)
    assert denied.returncode != 0
    assert "Authentication failed" in denied.stderr


def test_force_push_is_allowed(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    commit(work, "a.txt", "a\n", "second")
    run_git("push", "-q", platform.remote("demo"), "master", cwd=work)
    run_git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    rewritten = commit(work, "b.txt", "b\n", "rewritten")
    plain = run_git("push", platform.remote("demo"), "master", cwd=work, check=False)
    assert plain.returncode != 0 and "[rejected]" in plain.stderr
    forced = run_git("push", "--force", platform.remote("demo"), "master", cwd=work)
    assert "(forced update)" in forced.stderr
    assert remote_ref(platform, "demo") == rewritten


def test_other_branch_is_accepted_without_deploy(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    run_git("checkout", "-q", "-b", "feature", cwd=work)
    result = run_git("push", platform.remote("demo"), "feature", cwd=work)
    assert "remote: -----> Pushed to non-deploy branch feature, skipping build" in result.stderr
    assert "Received" not in result.stderr
    assert remote_ref(platform, "demo", "refs/heads/feature") is not None


def test_main_wins_when_both_deploy_branches_are_pushed(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    main_sha = commit(work, "m.txt", "m\n", "on main")
    run_git("branch", "main", cwd=work)
    run_git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    result = run_git("push", platform.remote("demo"), "master", "main", cwd=work)
    assert f"Received main at {main_sha[:7]}" in result.stderr
    assert result.stderr.count("Received") == 1


def test_deleting_the_deploy_branch_is_refused(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    run_git("push", "-q", platform.remote("demo"), "master", cwd=work)
    before = remote_ref(platform, "demo")
    result = run_git("push", platform.remote("demo"), ":master", cwd=work, check=False)
    assert result.returncode != 0
    assert "remote:  !     Deleting master is not allowed" in result.stderr
    assert "[remote rejected] master (deletion of the deploy branch is not allowed)" in result.stderr
    assert remote_ref(platform, "demo") == before


def test_wrong_or_missing_credentials_get_401(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    result = run_git("push", platform.remote("demo", token="nope"), "master", cwd=work, check=False)
    assert result.returncode != 0 and "Authentication failed" in result.stderr
    result = run_git("push", platform.url("demo"), "master", cwd=work, check=False)
    assert result.returncode != 0
    assert remote_ref(platform, "demo") is None


def test_user_without_access_gets_the_404_of_a_missing_app(platform: Platform,
                                                          tmp_path: Path) -> None:
    from shipway.accounts import Accounts

    _, other = Accounts(platform.layout).create_token("other@example.com")
    work = make_repo(tmp_path / "work")
    result = run_git("push", platform.remote("demo", token=other, user="other@example.com"),
                     "master", cwd=work, check=False)
    assert result.returncode != 0 and "403" not in result.stderr
    assert "remote: Couldn't find that app: demo." in result.stderr
    missing = run_git("push", platform.remote("nope", token=other, user="other@example.com"),
                      "master", cwd=work, check=False)
    assert result.stderr.replace("demo", "nope") == missing.stderr
    Accounts(platform.layout).add_collaborator("demo", "other@example.com")
    run_git("push", "-q", platform.remote("demo", token=other, user="other@example.com"),
            "master", cwd=work)
    assert remote_ref(platform, "demo") is not None


def test_unknown_app_is_404(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    result = run_git("push", platform.remote("nosuchapp"), "master", cwd=work, check=False)
    assert result.returncode != 0 and "not found" in result.stderr.lower()


def test_stage_lines_arrive_live(platform: Platform, stage_box: object, tmp_path: Path) -> None:
    """The first line reaches the terminal before the stage writes the second one."""

    class SlowStage:
        written_second_at = 0.0

        def pre_receive(self, push: object, out: object) -> None:
            out.line("-----> first line")  # type: ignore[attr-defined]
            time.sleep(3)
            SlowStage.written_second_at = time.monotonic()
            out.line("-----> second line")  # type: ignore[attr-defined]

        def post_receive(self, push: object, prepared: object, out: object) -> None:
            pass

    stage_box.stage = SlowStage()  # type: ignore[attr-defined]
    work = make_repo(tmp_path / "work")
    proc = subprocess.Popen(["git", "push", "--progress", platform.remote("demo"), "master"],
                            cwd=work, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first_seen_at = None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "first line" in line and first_seen_at is None:
            first_seen_at = time.monotonic()
    proc.wait()
    assert proc.returncode == 0, lines
    assert first_seen_at is not None
    assert first_seen_at < SlowStage.written_second_at
