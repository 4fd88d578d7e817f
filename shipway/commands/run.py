"""One-off dynos: ``run`` (attached to this terminal) and ``run:detached``.

As with Heroku's CLI, ``-a/--app``, ``-e/--env``, ``--no-tty`` and ``-x/--exit-code`` are read
wherever they appear; everything after ``--`` belongs to the command.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any

from release.oneoff import parse_env
from shipway.client import app_name, backend_for
from shipway.errors import UsageError
from shipway.terminal import drive

USAGE = "Usage: shipway run COMMAND [ARGS...] [-a APP] [-e KEY=VALUE] [--no-tty]"
VALUED = {"-a": "app", "--app": "app", "-e": "env", "--env": "env", "-s": "size",
          "--size": "size"}
FLAGS = {"--no-tty": "no_tty", "-x": "exit_code", "--exit-code": "exit_code"}


@dataclass
class RunArgs:
    words: list[str] = field(default_factory=list)
    app: str | None = None
    env: list[str] = field(default_factory=list)
    no_tty: bool = False


def split_run_args(tokens: list[str]) -> RunArgs:
    """Our options out of the command line; the rest is the command, in order."""
    found = RunArgs()
    rest = list(tokens)
    while rest:
        token = rest.pop(0)
        if token == "--":
            found.words.extend(rest)
            break
        name, eq, value = token.partition("=")
        if name in VALUED and (eq or rest):
            value = value if eq else rest.pop(0)
            if VALUED[name] == "app":
                found.app = value
            elif VALUED[name] == "env":
                found.env.append(value)
            continue
        if token in FLAGS:
            if FLAGS[token] == "no_tty":
                found.no_tty = True
            continue  # --exit-code: the command's status is always the CLI's
        found.words.append(token)
    return found


def command_line(words: list[str]) -> str:
    """One argument is a shell command as typed; several are quoted where needed (Heroku)."""
    if len(words) == 1:
        return words[0]
    return " ".join(shlex.quote(w) if any(c in w for c in " \t\"'") else w for w in words)


def _parsed(args: argparse.Namespace) -> tuple[RunArgs, str, argparse.Namespace]:
    found = split_run_args(list(args.words))
    if args.app and not found.app:
        found.app = args.app
    found.env = list(args.env or []) + found.env
    found.no_tty = found.no_tty or bool(args.no_tty)
    if not found.words:
        raise UsageError(USAGE)
    ns = argparse.Namespace(**{**vars(args), "app": found.app})
    return found, command_line(found.words), ns


def cmd_run(args: argparse.Namespace) -> int:
    found, command, ns = _parsed(args)
    env = parse_env(found.env)
    backend, app = backend_for(ns), app_name(ns)
    tty = sys.stdin.isatty() and not found.no_tty
    name, attachment = backend.run(app, command, env, tty)
    print(f"Running {command} on {app}... up, {name}", file=sys.stderr, flush=True)
    try:
        return drive(attachment, tty=tty)
    finally:
        attachment.close()


def cmd_run_detached(args: argparse.Namespace) -> int:
    found, command, ns = _parsed(args)
    env = parse_env(found.env)
    backend, app = backend_for(ns), app_name(ns)
    name = backend.run_detached(app, command, env)
    print(f"Running {command} on {app}... done, {name}")
    print(f"Run shipway logs -a {app} -p {name} to view the output.")
    return 0


def cmd_ps_exec(args: argparse.Namespace) -> int:
    found = split_run_args(list(args.words))
    if found.app and not args.app:
        args.app = found.app
    command = command_line(found.words) if found.words else "bash"
    backend, app = backend_for(args), app_name(args)
    tty = sys.stdin.isatty() and not (args.no_tty or found.no_tty)
    attachment = backend.exec(app, args.dyno, command, tty)
    print(f"Connecting to {args.dyno} on {app}...", file=sys.stderr, flush=True)
    try:
        return drive(attachment, tty=tty)
    finally:
        attachment.close()


def register(sub: Any) -> None:
    p = sub.add_parser("ps:exec", help="run a command (default bash) inside a running dyno",
                       usage="shipway ps:exec [-d DYNO] [COMMAND...] [-a APP]")
    p.add_argument("-a", "--app", help="app to run the command against")
    p.add_argument("-d", "--dyno", default="web.1", help="the dyno (default web.1)")
    p.add_argument("--no-tty", action="store_true", help="never allocate a TTY")
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.set_defaults(func=cmd_ps_exec)

    for command, func, text in (
        ("run", cmd_run, "run a command in a one-off dyno, attached to this terminal"),
        ("run:detached", cmd_run_detached, "run a command in a one-off dyno in the background"),
    ):
        p = sub.add_parser(command, help=text, usage=USAGE.removeprefix("Usage: "))
        p.add_argument("-a", "--app", help="app to run the command against")
        p.add_argument("-e", "--env", action="append", metavar="KEY=VALUE",
                       help="environment for the command (repeat, or KEY=V;KEY2=V2)")
        p.add_argument("--no-tty", action="store_true", help="never allocate a TTY")
        p.add_argument("-x", "--exit-code", action="store_true",
                       help="accepted for Heroku's CLI: the command's status is always ours")
        p.add_argument("-s", "--size", help="accepted for Heroku's CLI; dynos have one size")
        p.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND")
        p.set_defaults(func=func)
