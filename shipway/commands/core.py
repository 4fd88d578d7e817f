"""Local admin commands on the data home: serve, tokens, apps:create, access."""

from __future__ import annotations

import argparse
from typing import Any

from shipway.accounts import Accounts
from shipway.apps import create_app
from shipway.cli import add_app_option, context


def cmd_serve(args: argparse.Namespace) -> int:
    from shipway.server import serve

    ctx = context(args)
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.router_port is not None:
        overrides["router_port"] = args.router_port
    serve(ctx.layout, ctx.settings.with_overrides(**overrides))
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    ctx = context(args)
    ctx.layout.ensure()
    user, token = Accounts(ctx.layout).create_token(args.email, admin=args.admin)
    role = "admin" if user.admin else "user"
    print(f"Created token {user.tokens[-1].id} for {user.email} ({role}). It is shown only once:")
    print(token)
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    ctx = context(args)
    for user in Accounts(ctx.layout).users():
        for token in user.tokens:
            admin = " admin" if user.admin else ""
            print(f"{token.id}  {user.email}{admin}  created {token.created_at}")
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    ctx = context(args)
    user = Accounts(ctx.layout).revoke_token(args.token_id)
    print(f"Revoked token {args.token_id} of {user.email}.")
    return 0


def cmd_apps_create(args: argparse.Namespace) -> int:
    if args.owner is None or args.name is None:
        from shipway.commands.apps import create

        # no --owner: through the API of the server you are logged in to
        return create(args, owner=args.owner)
    ctx = context(args)
    app = create_app(ctx.layout, args.name, args.owner)
    host = ctx.settings.host
    print(f"Creating {app.name}... done")
    print(f"http://{host}:{ctx.settings.port}/{app.name}.git")
    return 0


def cmd_access_add(args: argparse.Namespace) -> int:
    ctx = context(args)
    Accounts(ctx.layout).add_collaborator(args.app, args.email)
    print(f"Adding {args.email} access to the app {args.app}... done")
    return 0


def cmd_access_remove(args: argparse.Namespace) -> int:
    ctx = context(args)
    Accounts(ctx.layout).remove_collaborator(args.app, args.email)
    print(f"Removing {args.email} access from the app {args.app}... done")
    return 0


def cmd_access(args: argparse.Namespace) -> int:
    ctx = context(args)
    app = Accounts(ctx.layout).app(args.app)
    print(f"{app.owner}  owner")
    for email in app.collaborators:
        print(f"{email}  collaborator")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the git endpoint, API and router")
    p.add_argument("--home", default=argparse.SUPPRESS, help="data home (default ./var)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--router-port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("tokens:create", help="create a user's API token (local admin)")
    p.add_argument("email")
    p.add_argument("--admin", action="store_true")
    p.set_defaults(func=cmd_tokens_create)

    p = sub.add_parser("tokens:list", help="list tokens (local admin)")
    p.set_defaults(func=cmd_tokens_list)

    p = sub.add_parser("tokens:revoke", help="revoke a token by id (local admin)")
    p.add_argument("token_id")
    p.set_defaults(func=cmd_tokens_revoke)

    p = sub.add_parser("apps:create", help="create an app (a free name when none is given)")
    p.add_argument("name", nargs="?")
    p.add_argument("--owner", help="local admin: create on the data home for this owner")
    p.add_argument("--no-remote", action="store_true",
                   help="do not add the 'platform' git remote")
    p.set_defaults(func=cmd_apps_create)

    p = sub.add_parser("access", help="list who may push to an app")
    add_app_option(p)
    p.set_defaults(func=cmd_access)

    p = sub.add_parser("access:add", help="add a collaborator")
    p.add_argument("email")
    add_app_option(p)
    p.set_defaults(func=cmd_access_add)

    p = sub.add_parser("access:remove", help="remove a collaborator")
    p.add_argument("email")
    add_app_option(p)
    p.set_defaults(func=cmd_access_remove)
