"""``shipway addons``, ``addons:create``, ``addons:info``, ``addons:destroy`` (local or remote)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from shipway.addons.records import Addon
from shipway.cli import add_app_option
from shipway.client import LocalBackend, RemoteBackend, app_name, backend_for
from shipway.commands.releases import ConsoleOutput


def addon_doc(addon: Addon) -> dict[str, Any]:
    """An add-on as the API shows it (no resource secrets)."""
    return {"name": addon.name, "provider": addon.provider, "plan": f"{addon.provider}:{addon.plan}",
            "attachment": addon.attachment, "config_vars": list(addon.config_vars),
            "created_at": addon.created_at, "created_by": addon.user}


def _list(backend: Any, app: str) -> list[dict[str, Any]]:
    if isinstance(backend, RemoteBackend):
        return list(backend._json("GET", f"/apps/{app}/addons"))
    from shipway.addons.store import attached

    assert isinstance(backend, LocalBackend)
    backend._check(app)
    return [addon_doc(a) for a in attached(backend.layout, app)]


def cmd_addons(args: argparse.Namespace) -> int:
    backend = backend_for(args)
    app = app_name(args)
    docs = _list(backend, app)
    if args.json:
        print(json.dumps(docs, indent=2))
        return 0
    print(f"=== {app} Add-ons")
    if not docs:
        print(f"No add-ons for app {app}.")
    for d in docs:
        print(f"{d['name']}  {d['plan']}  as {d['attachment']}  ({', '.join(d['config_vars'])})")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    backend = backend_for(args)
    app = app_name(args)
    provider = args.spec.partition(":")[0]
    if isinstance(backend, RemoteBackend):
        doc = backend._json("POST", f"/apps/{app}/addons",
                            body={"plan": args.spec, "attachment": args.as_name})
        addon, version = doc["addon"], doc["release"]["version"]
        status = doc["release"]["status"]
    else:
        from shipway.addons.service import create_addon

        assert isinstance(backend, LocalBackend)
        with backend._docker() as docker:
            made, release = create_addon(backend.layout, backend.settings, app=app,
                                         spec=args.spec, as_name=args.as_name,
                                         user=backend.user, out=ConsoleOutput(), docker=docker)
        addon, version, status = addon_doc(made), release.version, release.status
    outcome = "done" if status != "failed" else "failed to start"
    print(f"Creating {provider} on {app}... {outcome}, v{version}")
    print(f"Created {addon['name']} as {', '.join(addon['config_vars'])}")
    return 0 if status != "failed" else 1


def cmd_info(args: argparse.Namespace) -> int:
    backend = backend_for(args)
    app = app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("GET", f"/apps/{app}/addons/{args.name}")
    else:
        from shipway.addons.service import addon_info

        assert isinstance(backend, LocalBackend)
        addon, facts = addon_info(backend.layout, backend.settings, app=app, name=args.name)
        doc = {**addon_doc(addon), "info": facts}
    print(f"=== {doc['name']}")
    rows = [("Attachments", f"{app}::{doc['attachment']}"), ("Plan", doc["plan"]),
            ("Config vars", ", ".join(doc["config_vars"])), ("Created", doc["created_at"]),
            *doc.get("info", {}).items()]
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{value}")
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    backend = backend_for(args)
    app = app_name(args)
    if isinstance(backend, RemoteBackend):
        doc = backend._json("DELETE", f"/apps/{app}/addons/{args.name}",
                            params={"confirm": args.confirm or ""})
        version, status = doc["release"]["version"], doc["release"]["status"]
    else:
        from shipway.addons.service import destroy_addon

        assert isinstance(backend, LocalBackend)
        with backend._docker() as docker:
            _, release = destroy_addon(backend.layout, backend.settings, app=app,
                                       name=args.name, confirm=args.confirm, user=backend.user,
                                       out=ConsoleOutput(), docker=docker)
        version, status = release.version, release.status
    outcome = "done" if status != "failed" else "failed to start"
    print(f"Destroying {args.name} on {app}... {outcome}, v{version}")
    return 0 if status != "failed" else 1


def register(sub: Any) -> None:
    p = sub.add_parser("addons", help="list an app's add-ons")
    add_app_option(p, required=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_addons)

    p = sub.add_parser("addons:create", help="provision an add-on (one release)")
    p.add_argument("spec", metavar="PROVIDER[:PLAN]")
    p.add_argument("--as", dest="as_name", help="attachment name (config var prefix)")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("addons:info", help="show an add-on")
    p.add_argument("name")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("addons:destroy", help="deprovision an add-on (one release)")
    p.add_argument("name")
    p.add_argument("--confirm")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_destroy)
