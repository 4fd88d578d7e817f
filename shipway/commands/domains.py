"""``shipway domains``, ``domains:add``, ``domains:remove``, ``certs``, ``certs:add``,
``certs:remove`` (local or remote)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shipway.cli import add_app_option
from shipway.client import LocalBackend, RemoteBackend, app_name, backend_for
from shipway.domains import Certificate
from shipway.errors import UsageError


def domain_docs(app: str, default: str, custom: tuple[str, ...]) -> list[dict[str, Any]]:
    """An app's hosts as the API shows them."""
    return [{"hostname": default, "kind": "default", "app": {"name": app}},
            *({"hostname": h, "kind": "custom", "app": {"name": app}} for h in custom)]


def cert_doc(cert: Certificate) -> dict[str, Any]:
    return {"app": {"name": cert.app}, "subject": cert.subject, "hosts": list(cert.hosts),
            "expires_at": cert.expires, "fingerprint": cert.fingerprint}


def _local(backend: Any) -> LocalBackend:
    assert isinstance(backend, LocalBackend)
    return backend


def _domains(backend: Any, app: str) -> list[dict[str, Any]]:
    if isinstance(backend, RemoteBackend):
        return list(backend._json("GET", f"/apps/{app}/domains"))
    from shipway.routing import list_domains

    local = _local(backend)
    local._check(app)
    default, custom = list_domains(local.layout, local.settings, app)
    return domain_docs(app, default, custom)


def cmd_domains(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    docs = _domains(backend, app)
    if args.json:
        print(json.dumps(docs, indent=2))
        return 0
    print(f"=== {app} Shipway Domain")
    print(next(d["hostname"] for d in docs if d["kind"] == "default"))
    custom = [d["hostname"] for d in docs if d["kind"] == "custom"]
    print()
    print(f"=== {app} Custom Domains")
    print("\n".join(custom) if custom else f"{app} has no custom domains.")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        host = backend._json("POST", f"/apps/{app}/domains",
                             body={"hostname": args.hostname})["hostname"]
    else:
        from shipway.routing import add_domain

        local = _local(backend)
        local._check(app)
        host = add_domain(local.layout, local.settings, app, args.hostname)
    print(f"Adding {host} to {app}... done")
    print(f"Point {host}'s DNS (a CNAME or an A record) at this Shipway's router.")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        host = backend._json("DELETE", f"/apps/{app}/domains/{args.hostname}")["hostname"]
    else:
        from shipway.routing import remove_domain

        local = _local(backend)
        local._check(app)
        host = remove_domain(local.layout, app, args.hostname)
    print(f"Removing {host} from {app}... done")
    return 0


def _print_cert(doc: dict[str, Any]) -> None:
    rows = [("Common Name(s)", ", ".join(doc["hosts"])), ("Expires At", doc["expires_at"]),
            ("Subject", doc["subject"]), ("SHA256 Fingerprint", doc["fingerprint"])]
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{value}")


def cmd_certs(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        docs = list(backend._json("GET", f"/apps/{app}/sni-endpoints"))
    else:
        from shipway.routing import certificate

        local = _local(backend)
        local._check(app)
        found = certificate(local.layout, app)
        docs = [cert_doc(found)] if found else []
    if args.json:
        print(json.dumps(docs, indent=2))
        return 0
    if not docs:
        print(f"{app} has no SSL certificates.")
        print(f"Use shipway certs:add CRT KEY -a {app} to add one.")
        return 0
    print(f"=== {app} SSL Certificate")
    _print_cert(docs[0])
    return 0


def _read_pem(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"Could not read the {what} file {path}: {exc.strerror}.") from None


def cmd_certs_add(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    cert_pem, key_pem = _read_pem(args.cert, "certificate"), _read_pem(args.key, "key")
    if isinstance(backend, RemoteBackend):
        doc = backend._json("POST", f"/apps/{app}/sni-endpoints", body={
            "certificate_chain": cert_pem.decode("utf-8", "replace"),
            "private_key": key_pem.decode("utf-8", "replace")})
    else:
        from shipway.routing import add_certificate

        local = _local(backend)
        local._check(app)
        doc = cert_doc(add_certificate(local.layout, app, cert_pem, key_pem))
    print(f"Adding SSL certificate to {app}... done")
    _print_cert(doc)
    return 0


def cmd_certs_remove(args: argparse.Namespace) -> int:
    backend, app = backend_for(args), app_name(args)
    if isinstance(backend, RemoteBackend):
        backend._json("DELETE", f"/apps/{app}/sni-endpoints")
    else:
        from shipway.routing import remove_certificate

        local = _local(backend)
        local._check(app)
        remove_certificate(local.layout, app)
    print(f"Removing SSL certificate from {app}... done")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("domains", help="list an app's domains")
    add_app_option(p, required=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_domains)

    p = sub.add_parser("domains:add", help="route a custom domain to an app")
    p.add_argument("hostname")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("domains:remove", help="remove a custom domain from an app")
    p.add_argument("hostname")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("certs", help="show an app's SSL certificate")
    add_app_option(p, required=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_certs)

    p = sub.add_parser("certs:add", help="serve an app over HTTPS with a certificate and key")
    p.add_argument("cert", metavar="CRT")
    p.add_argument("key", metavar="KEY")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_certs_add)

    p = sub.add_parser("certs:remove", help="remove an app's SSL certificate")
    add_app_option(p, required=False)
    p.set_defaults(func=cmd_certs_remove)
