"""The ``shipway`` command line. Each module in ``shipway.commands`` registers its commands.

Errors are rendered here, once: one line on stderr, exit code 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO, cast

import shipway.commands
from shipway.errors import ShipwayError, UsageError
from shipway.layout import Layout
from shipway.log import configure as configure_logs
from shipway.settings import Settings, load_settings


@dataclass(frozen=True, slots=True)
class Context:
    """What a local command needs: the data home and its settings."""

    layout: Layout
    settings: Settings


def context(args: argparse.Namespace) -> Context:
    home = args.home or os.environ.get("SHIPWAY_HOME") or "./var"
    layout = Layout.at(home)
    return Context(layout=layout, settings=load_settings(layout.settings_file))


def add_app_option(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("-a", "--app", required=required, help="app to run the command against")


class _Stderr:
    """Whatever sys.stderr is at write time."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shipway", description="Self-hosted git push to deploy.")
    parser.add_argument("--home", help="data home (default $SHIPWAY_HOME or ./var)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(shipway.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"shipway.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # structured logs go to stderr, warnings and up, so stdout holds only what a command prints
    configure_logs(stream=cast(TextIO, _Stderr()), level=logging.WARNING)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        result = args.func(args)
        return int(result or 0)
    except UsageError as exc:
        print(f" !    {exc.message}", file=sys.stderr)
        return 2
    except ShipwayError as exc:
        print(f" !    {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"      {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
