"""Procfile parsing: ``name: command`` lines, errors that name the line."""

from __future__ import annotations

import pytest

from builder.procfile import parse_procfile
from shipway.errors import BuildFailed


def test_types_in_file_order_with_comments_and_blank_lines() -> None:
    text = "# processes\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\nworker:python3 w.py\n"
    assert parse_procfile(text) == {"web": "gunicorn app:app --bind 0.0.0.0:$PORT",
                                    "worker": "python3 w.py"}


@pytest.mark.parametrize("line", ["just words", "web:", ": cmd", "we b: cmd", "web!: cmd"])
def test_malformed_line_is_named(line: str) -> None:
    with pytest.raises(BuildFailed) as failed:
        parse_procfile(f"web: ok\n{line}\n")
    assert failed.value.message == f'Procfile line 2 is not "name: command": {line!r}'


def test_duplicate_type_is_an_error() -> None:
    with pytest.raises(BuildFailed) as failed:
        parse_procfile("web: a\nweb: b\n")
    assert failed.value.message == "Procfile line 2 declares 'web' a second time."
