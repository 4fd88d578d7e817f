"""``login``, ``logout`` and ``auth:whoami``: credentials in ``~/.netrc``, as the Heroku CLI."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from shipway.client import (
    RemoteBackend,
    backend_for,
    remote_backend,
    remove_credentials,
    save_server,
    saved_server,
    server_host,
    write_credentials,
)
from shipway.errors import UsageError

DEFAULT_SERVER = "http://127.0.0.1:5000"


def _ask(prompt: str, secret: bool = False) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise UsageError(f"{prompt.strip(': ')} is required: give it with its option.")
        return line.strip()
    return getpass.getpass(prompt) if secret else input(prompt)


def cmd_login(args: argparse.Namespace) -> int:
    server = (args.server or saved_server() or DEFAULT_SERVER).rstrip("/")
    host = server_host(server)
    email = args.email or _ask("Email: ")
    token = args.token or _ask("Token: ", secret=True)
    if not email or not token:
        raise UsageError("Both an email and a token are needed to log in.")
    account = RemoteBackend(server, email, token).whoami()
    write_credentials(host, email, token)
    save_server(server)
    role = " (admin)" if account.get("admin") else ""
    print(f"Logged in as {account['email']}{role} on {server}")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    server = saved_server()
    if server is None:
        print("Not logged in.")
        return 0
    removed = remove_credentials(server_host(server))
    save_server(None)
    print(f"Logging out of {server}... done" if removed else "Not logged in.")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    """The email on stdout (as Heroku's); where commands go on stderr."""
    from shipway.cli import context

    if getattr(args, "home", None):
        home = context(args).layout.home
        account = backend_for(args).whoami()
        print(account["email"] + " (admin)")
        print(f"Local mode: commands work on the data home {home} (--home).", file=sys.stderr)
        return 0
    account = remote_backend().whoami()
    print(account["email"] + (" (admin)" if account.get("admin") else ""))
    print(f"Commands go to {saved_server()} (shipway login); --home DIR works on a data "
          "home instead.", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("login", help="log in to a Shipway server (credentials in ~/.netrc)")
    p.add_argument("--server", help=f"server URL (default: the last one, or {DEFAULT_SERVER})")
    p.add_argument("--email")
    p.add_argument("--token")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", help="forget the credentials of the server")
    p.set_defaults(func=cmd_logout)

    p = sub.add_parser("auth:whoami", help="show who you are logged in as")
    p.set_defaults(func=cmd_whoami)
