"""``shipway stack:set`` / ``buildpacks:set``: what the admin reads and what the app record keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.cli import main
from shipway.layout import Layout


def test_stack_and_buildpack_are_stored_on_the_app(
    layout: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    create_app(layout, "demo", "dev@example.com")
    home = ["--home", str(layout.home)]
    assert main([*home, "stack:set", "example/stack:2", "-a", "demo"]) == 0
    assert main([*home, "buildpacks:set", "https://example.com/bp.git", "-a", "demo"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Setting stack of demo to example/stack:2... done",
        "Buildpack set. Next release on demo will use https://example.com/bp.git.",
    ]
    app = Accounts(layout).app("demo")
    assert (app.stack, app.buildpack) == ("example/stack:2", "https://example.com/bp.git")
    assert main([*home, "buildpacks:set", "", "-a", "demo"]) == 0
    assert Accounts(layout).app("demo").buildpack == ""


def test_unknown_app_is_an_error(layout: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(layout.home), "stack:set", "x:1", "-a", "nope"]) == 1
    assert capsys.readouterr().err.strip() == "!    Couldn't find that app: nope."


def test_stacks_build_reports_a_missing_ca_bundle(
    tmp_path: Path, layout: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--home", str(layout.home), "stacks:build", "--ca-bundle",
                 str(tmp_path / "missing.pem")])
    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f" !    Cannot read the CA bundle {tmp_path / 'missing.pem'}: No such file or directory."
