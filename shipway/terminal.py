"""The user's terminal wired to an attached dyno (``run``, ``ps:exec``).

With ``tty`` the local terminal goes raw (Ctrl-C, arrows and tab reach the dyno's TTY) and its
window size follows along (SIGWINCH); otherwise stdin is copied until EOF, which the command
then reads. Output is written as it comes; the command's exit status is returned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
from types import FrameType

from release.oneoff import STDERR, Attachment


def window_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((80, 24))
    return size.lines, size.columns


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    with contextlib.suppress(BrokenPipeError):
        while view:
            view = view[os.write(fd, view):]


def drive(attachment: Attachment, *, tty: bool) -> int:
    """Copy stdin in and output out until the command ends; its exit status."""
    stdin = sys.stdin.fileno()
    saved = None
    previous_winch = None
    if tty:
        import termios
        import tty as tty_mod

        saved = termios.tcgetattr(stdin)
        tty_mod.setraw(stdin)
        attachment.resize(*window_size())

        def on_winch(signum: int, frame: FrameType | None) -> None:
            attachment.resize(*window_size())

        previous_winch = signal.signal(signal.SIGWINCH, on_winch)

    def pump_stdin() -> None:
        while True:
            try:
                data = os.read(stdin, 1 << 16)
            except OSError:
                data = b""
            if not data:
                attachment.close_stdin()
                return
            attachment.send(data)

    threading.Thread(target=pump_stdin, name="shipway-stdin", daemon=True).start()
    try:
        for stream, data in attachment.output():
            _write_all(2 if stream == STDERR else 1, data)
        return attachment.exit_status()
    except KeyboardInterrupt:
        attachment.close()
        return 130
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        if previous_winch is not None:
            signal.signal(signal.SIGWINCH, previous_winch)
