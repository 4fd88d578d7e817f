"""Build commands: ``stacks:build``, ``stack:set``, ``buildpacks:set``."""

from __future__ import annotations

import argparse
from typing import Any

from builder.stack import STACK_NAME, ensure_stack
from shipway.accounts import Accounts
from shipway.cli import add_app_option, context


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
    try:
        image = ensure_stack(ctx.settings, docker=client, out=TerminalOutput(),
                             ca_bundle=args.ca_bundle, name=args.name)
    finally:
        client.close()
    print(f"Stack image {image} is up to date.")
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
    p = sub.add_parser("stacks:build", help="build (or check) Shipway's stack image")
    p.add_argument("--name", default=STACK_NAME, help=f"image tag (default {STACK_NAME})")
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
