"""Bad pushes: each gets one clear line, leaves the repository unchanged and the server serving."""

from __future__ import annotations

import base64
import gzip
import http.client
import io
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from dulwich.object_format import SHA1
from dulwich.objects import Blob, Commit, Tree
from dulwich.pack import write_pack_objects
from dulwich.repo import Repo

from tests.conftest import run_git
from tests.integration.conftest import Platform, commit, make_repo, remote_ref

ZERO = "0" * 40
CAPS = b"report-status side-band-64k agent=test"


def pkt(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data


def commands_body(lines: list[str]) -> bytes:
    body = b""
    for i, line in enumerate(lines):
        data = line.encode() + ((b"\0" + CAPS) if i == 0 else b"") + b"\n"
        body += pkt(data)
    return body + b"0000"


def pack_of(objects: list[Any]) -> bytes:
    buf = io.BytesIO()
    write_pack_objects(buf.write, [(o, None) for o in objects], SHA1)
    return buf.getvalue()


def post(platform: Platform, app: str, body: bytes, *, headers: dict[str, str] | None = None,
         path: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(platform.server.host, platform.server.port, timeout=60)
    auth = base64.b64encode(f"{platform.email}:{platform.token}".encode()).decode()
    all_headers = {
        "Content-Type": "application/x-git-receive-pack-request",
        "Authorization": f"Basic {auth}",
        **(headers or {}),
    }
    conn.request("POST", path or f"/{app}.git/git-receive-pack", body=body, headers=all_headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def assert_still_serving(platform: Platform, tmp_path: Path, name: str = "after") -> None:
    work = make_repo(tmp_path / name, {"ok.txt": "ok\n"})
    run_git("push", "-q", "--force", platform.remote("demo"), "master:refs/heads/probe", cwd=work)
    assert remote_ref(platform, "demo", "refs/heads/probe") is not None
    objects = platform.layout.repo_path("demo") / "objects"
    assert not list(objects.glob("incoming-*")), "a quarantine was left behind"


def test_malformed_pkt_lines_get_400(platform: Platform, tmp_path: Path) -> None:
    status, body = post(platform, "demo", b"zzzzgarbage")
    assert status == 400 and b"Bad request" in body
    assert remote_ref(platform, "demo") is None
    assert_still_serving(platform, tmp_path)


def test_invalid_update_line_gets_400(platform: Platform, tmp_path: Path) -> None:
    status, body = post(platform, "demo", pkt(b"not a command\n") + b"0000")
    assert status == 400 and b"invalid ref update line" in body


def test_endless_ref_update_lines_are_cut_off(platform: Platform, tmp_path: Path) -> None:
    lines = [f"{ZERO} {'1' * 40} refs/heads/b{i}" for i in range(5000)]
    status, body = post(platform, "demo", commands_body(lines))
    assert status == 400 and b"too many ref updates" in body
    assert not (platform.layout.repo_path("demo") / "refs" / "heads" / "b1").exists()


def test_truncated_and_corrupt_packs_are_rejected(platform: Platform, tmp_path: Path) -> None:
    blob = Blob.from_string(b"hi\n")
    tree = Tree()
    tree.add(b"hi.txt", 0o100644, blob.id)
    c = Commit()
    c.tree = tree.id
    c.author = c.committer = b"A <a@b>"
    c.author_time = c.commit_time = 0
    c.author_timezone = c.commit_timezone = 0
    c.message = b"x\n"
    pack = pack_of([blob, tree, c])
    cmd = commands_body([f"{ZERO} {c.id.decode()} refs/heads/master"])
    for bad in (pack[: len(pack) // 2], pack[:-5] + b"\x00" * 5):
        status, body = post(platform, "demo", cmd + bad)
        assert status in (200, 400)
        if status == 200:
            assert b"ng refs/heads/master" in body
        assert remote_ref(platform, "demo") is None
    assert_still_serving(platform, tmp_path)


def test_gzip_bomb_is_refused(platform: Platform, tmp_path: Path) -> None:
    # 20 MiB pack cap + 16 MiB slack: 64 MiB of zeros inflates past it
    raw = commands_body([f"{ZERO} {'1' * 40} refs/heads/master"]) + b"\0" * (64 * 1024 * 1024)
    status, body = post(platform, "demo", gzip.compress(raw, 9), headers={"Content-Encoding": "gzip"})
    assert status in (200, 400)
    assert b"ok refs/heads/master" not in body
    assert remote_ref(platform, "demo") is None
    assert_still_serving(platform, tmp_path)


def test_ref_to_missing_object_is_rejected(platform: Platform, tmp_path: Path) -> None:
    cmd = commands_body([f"{ZERO} {'ab' * 20} refs/heads/master"])
    status, body = post(platform, "demo", cmd + pack_of([]))
    assert status == 200
    assert b"ng refs/heads/master missing necessary objects" in body
    assert remote_ref(platform, "demo") is None


def test_invalid_ref_name_is_rejected(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    head = run_git("rev-parse", "HEAD", cwd=work).stdout.strip()
    run_git("push", "-q", platform.remote("demo"), "master", cwd=work)
    for ref in ("refs/heads/a..b", "refs/heads/x.lock", "HEAD", "refs/heads/.hidden"):
        status, body = post(platform, "demo", commands_body([f"{ZERO} {head} {ref}"]) + pack_of([]))
        assert status == 200 and b"funny refname" in body, (ref, body)
    assert sorted(p.name for p in (platform.layout.repo_path("demo") / "refs" / "heads").iterdir()) == ["master"]


def _push_bad_tree(platform: Platform, tmp_path: Path, name: bytes, mode: int = 0o100644,
                   nested: bool = False) -> subprocess.CompletedProcess[str]:
    work = make_repo(tmp_path / f"bad-{abs(hash(name))}")
    repo = Repo(str(work))
    blob = Blob.from_string(b"payload\n")
    tree = Tree()
    tree.add(name, mode, blob.id)
    top = tree
    if nested:
        top = Tree()
        top.add(b"sub", 0o040000, tree.id)
    parent = repo[repo.head()]
    assert isinstance(parent, Commit)
    c = Commit()
    c.tree, c.parents = top.id, [parent.id]
    c.author = c.committer = b"Dev <dev@example.com>"
    c.author_time = c.commit_time = int(time.time())
    c.author_timezone = c.commit_timezone = 0
    c.message = b"evil\n"
    for obj in (blob, tree, top, c):
        repo.object_store.add_object(obj)
    repo.refs[b"refs/heads/master"] = c.id
    repo.close()
    return run_git("push", platform.remote("demo"), "master", cwd=work, check=False)


def test_trees_with_dangerous_names_are_rejected(platform: Platform, tmp_path: Path) -> None:
    cases = [(b"..", False), (b".git", True), (b".GIT", False), (b"a/b", False),
             (b".git.", False), (b"git~1", False)]
    for name, nested in cases:
        result = _push_bad_tree(platform, tmp_path, name, nested=nested)
        assert result.returncode != 0, name
        assert "remote:  !     Push rejected:" in result.stderr, (name, result.stderr)
        assert "[remote rejected] master -> master (invalid object)" in result.stderr
        assert remote_ref(platform, "demo") is None
    result = _push_bad_tree(platform, tmp_path, b".gitmodules", mode=0o120000)
    assert result.returncode != 0 and ".gitmodules is a symbolic link" in result.stderr


def test_atomic_push_moves_all_or_nothing(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    run_git("push", "-q", platform.remote("demo"), "master", cwd=work)
    before = remote_ref(platform, "demo")
    run_git("branch", "other", cwd=work)
    commit(work, "n.txt", "n\n", "new")
    result = run_git("push", "--atomic", platform.remote("demo"), "master", "other", ":master",
                     cwd=work, check=False)
    assert result.returncode != 0
    assert remote_ref(platform, "demo") == before
    assert remote_ref(platform, "demo", "refs/heads/other") is None


def test_held_ref_lock_gives_clean_ng(platform: Platform, tmp_path: Path) -> None:
    work = make_repo(tmp_path / "work")
    run_git("push", "-q", platform.remote("demo"), "master", cwd=work)
    before = remote_ref(platform, "demo")
    lock = platform.layout.repo_path("demo") / "refs" / "heads" / "master.lock"
    lock.write_text("held\n")
    commit(work, "l.txt", "l\n", "locked")
    result = run_git("push", platform.remote("demo"), "master", cwd=work, check=False)
    lock.unlink()
    assert result.returncode != 0
    assert "[remote rejected] master -> master (failed to update ref)" in result.stderr
    assert remote_ref(platform, "demo") == before


def test_racing_pushes_one_wins_the_other_is_told(platform: Platform, stage_box: Any,
                                                  tmp_path: Path) -> None:
    deployed: list[str] = []

    class SlowStage:
        def pre_receive(self, push: Any, out: Any) -> Any:
            time.sleep(2)
            return push.deploy.new

        def post_receive(self, push: Any, prepared: Any, out: Any) -> None:
            deployed.append(prepared)

    stage_box.stage = SlowStage()
    a = make_repo(tmp_path / "a", {"a.txt": "a\n"}, "from a")
    b = make_repo(tmp_path / "b", {"b.txt": "b\n"}, "from b")
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def push(name: str, work: Path) -> None:
        results[name] = run_git("push", platform.remote("demo"), "master", cwd=work, check=False)

    threads = [threading.Thread(target=push, args=(n, w)) for n, w in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results.values())
    assert codes[0] == 0 and codes[1] != 0, results
    loser = next(r for r in results.values() if r.returncode != 0)
    assert "(fetch first)" in loser.stderr
    winner = next(n for n, r in results.items() if r.returncode == 0)
    winner_head = run_git("rev-parse", "HEAD", cwd=a if winner == "a" else b).stdout.strip()
    assert deployed == [winner_head]
    assert remote_ref(platform, "demo") == winner_head


def test_traversal_urls_are_404(platform: Platform) -> None:
    for path in ("/../demo.git/info/refs?service=git-upload-pack",
                 "/%2e%2e/demo.git/info/refs?service=git-upload-pack",
                 "/demo.git/../../etc/passwd", "/Demo.git/info/refs?service=git-upload-pack",
                 "/de%6do.git/info/refs?service=git-upload-pack"):
        conn = http.client.HTTPConnection(platform.server.host, platform.server.port, timeout=10)
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 404, path
        resp.read()
        conn.close()


def test_client_disconnecting_mid_pack_changes_nothing(platform: Platform, tmp_path: Path) -> None:
    cmd = commands_body([f"{ZERO} {'ab' * 20} refs/heads/master"])
    pack_head = b"PACK\x00\x00\x00\x02\x00\x00\x00\x05"
    auth = base64.b64encode(f"{platform.email}:{platform.token}".encode()).decode()
    sock = socket.create_connection((platform.server.host, platform.server.port))
    head = (
        "POST /demo.git/git-receive-pack HTTP/1.1\r\n"
        f"Host: {platform.server.host}\r\n"
        "Content-Type: application/x-git-receive-pack-request\r\n"
        f"Authorization: Basic {auth}\r\n"
        "Content-Length: 1000000\r\n\r\n"
    )
    sock.sendall(head.encode() + cmd + pack_head + b"\x95" * 100)
    time.sleep(0.5)
    sock.close()
    time.sleep(0.5)
    assert remote_ref(platform, "demo") is None
    assert_still_serving(platform, tmp_path)
