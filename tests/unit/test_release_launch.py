"""The launcher's small decisions, without Docker: boot probes, dyno environment, entrypoint."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

from release.launch import ENTRYPOINT, _stream_lines, accepts_connections, environment
from release.records import Release


def test_a_listener_accepts_and_a_closed_port_does_not() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    assert accepts_connections(port)
    listener.close()
    assert not accepts_connections(port)


def test_a_proxy_that_accepts_then_hangs_up_is_not_a_listener() -> None:
    """Docker's userland proxy accepts on the host port and closes when nothing listens inside."""
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    assert not accepts_connections(listener.getsockname()[1])
    listener.close()


def test_dyno_environment_is_config_plus_what_shipway_sets() -> None:
    release = Release(app="shop", version=7, description="d", status="pending", user="u",
                      created_at="t", updated_at="t", config={"GREETING": "hi\nthere"})
    env = environment(release, "web.2", web=True)
    assert env == {"GREETING": "hi\nthere", "DYNO": "web.2", "SHIPWAY_APP": "shop",
                   "SHIPWAY_RELEASE": "v7", "HOME": "/app", "PORT": "5000"}


def test_the_entrypoint_sources_profile_scripts_and_never_formats_the_command(
    tmp_path: Path
) -> None:
    """Run the real entrypoint script with bash, /app replaced by a temp folder."""
    profile = tmp_path / ".profile.d"
    profile.mkdir()
    (profile / "a.sh").write_text('export FROM_PROFILE="yes it is"\n__shipway_f=hijacked; set -- hijacked\n')
    script = ENTRYPOINT[2].replace("/app/", f"{tmp_path}/")
    command = 'echo "$FROM_PROFILE" \'$(not run)\' "$1"'
    result = subprocess.run([*ENTRYPOINT[:2], script, command],
                            capture_output=True, text=True, check=True)
    assert result.stdout == "yes it is $(not run) \n"
    assert "hijacked" not in result.stdout


def test_stream_lines_joins_chunks_at_newlines() -> None:
    assert list(_stream_lines([b"mig", b"rating\nno da", b"tabase\nlast"])) == [
        "migrating", "no database", "last"]
