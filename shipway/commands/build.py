"""Build commands: ``stacks:build``, ``stack:set``, ``buildpacks:set``."""

from __future__ import annotations

import argparse
from typing import Any

from builder.stack import CATALOG, STACK_NAME, ensure_stack
from shipway.accounts import Accounts
from shipway.cli import add_app_option, context
from shipway.errors import UsageError


class TerminalOutput:
    """Output for local commands: lines on stdout as they come."""

    def line(self, text: str) -> None:
        print(text, flush=True)

    def error(self, text: str) -> None:
        print(f" !     {text}", flush=True)


def cmd_stacks_build(args: argparse.Namespace) -> int:
    import docker

    ctx = context(args)
    client = docker.from_env()
    specs = [s for s in CATALOG.stacks if s.name == args.stack] if args.stack else [CATALOG.default]
    if not specs:
        names = ", ".join(s.name for s in CATALOG.stacks)
        raise UsageError(f"No stack {args.stack!r}; the stacks are {names}.")
    try:
        images = [ensure_stack(ctx.settings, docker=client, out=TerminalOutput(),
                               ca_bundle=args.ca_bundle, spec=specs[0], variant=variant)
                  for variant in ("run", "build")]
    finally:
        client.close()
    print(f"Stack images {' and '.join(images)} are up to date.")
    return 0


def cmd_stack_set(args: argparse.Namespace) -> int:
    ctx = context(args)
    Accounts(ctx.layout).update_app(args.app, stack=args.image)
    shown = args.image or f"the default ({STACK_NAME})"
    print(f"Setting stack of {args.app} to {shown}... done")
    return 0


def cmd_buildpacks_set(args: argparse.Namespace) -> int:
    ctx = context(args)
    Accounts(ctx.layout).update_app(args.app, buildpack=args.buildpack)
    if args.buildpack:
        print(f"Buildpack set. Next release on {args.app} will use {args.buildpack}.")
    else:
        print(f"Buildpack cleared. Next release on {args.app} will detect its buildpack.")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("stacks:build", help="build (or check) a stack's run and build images")
    p.add_argument("stack", nargs="?", default="",
                   help=f"a stack of builder/stack/stacks.toml (default {CATALOG.default.name})")
    p.add_argument("--ca-bundle", help="CA bundle copied into the stack (default stack.ca_bundle)")
    p.set_defaults(func=cmd_stacks_build)

    p = sub.add_parser("stack:set", help="build an app on another image ('' for the default)")
    p.add_argument("image")
    add_app_option(p)
    p.set_defaults(func=cmd_stack_set)

    p = sub.add_parser("buildpacks:set", help="use one buildpack (folder or git URL; '' to detect)")
    p.add_argument("buildpack")
    add_app_option(p)
    p.set_defaults(func=cmd_buildpacks_set)
