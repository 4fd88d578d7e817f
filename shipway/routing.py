"""Custom domains and TLS certificates of apps: the operations behind ``domains:*`` and
``certs:*`` (CLI and API), each applied to the running router at once.

A host belongs to one app only; ``NAME.DOMAIN`` is every app's own and cannot be added. A
certificate is an operator's own PEM chain and key (checked to match before anything is
written); nginx then serves the app's hosts over HTTPS on ``router.https_port``.

The seam for automatic certificates: a ``CertificateIssuer`` (e.g. an ACME client, once one
can reach its server) returns a chain and key for hosts, and ``issue_certificate`` stores them
through the same path as ``certs:add``.
"""

from __future__ import annotations

import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from shipway import domains, nginx
from shipway.accounts import Accounts
from shipway.domains import Certificate, check_hostname
from shipway.errors import Conflict, NotFound, UsageError
from shipway.files import locked, write_atomically
from shipway.layout import Layout
from shipway.settings import Settings

MAX_PEM = 1024 * 1024


class CertificateIssuer(Protocol):
    """Gets a certificate for hosts (the seam for ACME): returns (chain PEM, key PEM)."""

    def issue(self, app: str, hosts: tuple[str, ...]) -> tuple[bytes, bytes]: ...


def _lock(layout: Layout) -> AbstractContextManager[None]:
    """One lock for every app's domains: a host is checked free and taken in one step."""
    return locked(layout.locks_dir / "domains.lock")


def default_host(settings: Settings, app: str) -> str:
    return f"{app}.{settings.router_domain}".lower()


def list_domains(layout: Layout, settings: Settings, app: str) -> tuple[str, tuple[str, ...]]:
    """(the default host, the custom domains)."""
    Accounts(layout).app(app)
    return default_host(settings, app), domains.read_domains(layout, app)


def owner_of(layout: Layout, host: str) -> str | None:
    for app in Accounts(layout).apps():
        if host in domains.read_domains(layout, app.name):
            return app.name
    return None


def add_domain(layout: Layout, settings: Settings, app: str, host: str) -> str:
    """Route ``host`` to the app; raises Conflict when another app (or this one) has it."""
    Accounts(layout).app(app)
    name = check_hostname(host)
    suffix = "." + settings.router_domain.lower()
    if name.endswith(suffix) or name == settings.router_domain.lower():
        raise UsageError(f"{name} is under the router's domain {settings.router_domain}: "
                         f"every app has NAME{suffix} already.")
    with _lock(layout):
        taken = owner_of(layout, name)
        if taken == app:
            raise Conflict(f"{name} is already a domain of {app}.")
        if taken is not None:
            raise Conflict(f"{name} is already taken by another app.")
        domains.write_domains(layout, app, (*domains.read_domains(layout, app), name))
        nginx.sync_app(layout, app)
    return name


def remove_domain(layout: Layout, app: str, host: str) -> str:
    Accounts(layout).app(app)
    name = check_hostname(host)
    with _lock(layout):
        current = domains.read_domains(layout, app)
        if name not in current:
            raise NotFound(f"{name} is not a domain of {app}.")
        domains.write_domains(layout, app, tuple(h for h in current if h != name))
        nginx.sync_app(layout, app)
    return name


def add_certificate(layout: Layout, app: str, cert_pem: bytes, key_pem: bytes) -> Certificate:
    """Store the app's certificate and key (replacing one it had) and serve HTTPS with them."""
    Accounts(layout).app(app)
    if len(cert_pem) > MAX_PEM or len(key_pem) > MAX_PEM:
        raise UsageError("The certificate or key is too large to be PEM.")
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise UsageError("The certificate file holds no PEM certificate.")
    if b"PRIVATE KEY-----" not in key_pem:
        raise UsageError("The key file holds no PEM private key.")
    with tempfile.TemporaryDirectory(dir=layout.run_dir, prefix=".tmp-cert-") as scratch:
        domains.check_pair(cert_pem, key_pem, Path(scratch))
    with _lock(layout):
        # the key first: a certificate is only used once its key is in place
        write_atomically(domains.key_file(layout, app), key_pem, mode=0o600)
        write_atomically(domains.cert_file(layout, app), cert_pem)
        nginx.sync_app(layout, app)
    found = domains.describe(layout, app)
    assert found is not None
    return found


def issue_certificate(layout: Layout, app: str, issuer: CertificateIssuer,
                      settings: Settings) -> Certificate:
    """A certificate from ``issuer`` for every host of the app, stored as ``certs:add`` does."""
    default, custom = list_domains(layout, settings, app)
    chain, key = issuer.issue(app, (default, *custom))
    return add_certificate(layout, app, chain, key)


def certificate(layout: Layout, app: str) -> Certificate | None:
    Accounts(layout).app(app)
    return domains.describe(layout, app)


def remove_certificate(layout: Layout, app: str) -> Certificate:
    Accounts(layout).app(app)
    with _lock(layout):
        found = domains.describe(layout, app)
        if found is None:
            raise NotFound(f"{app} has no SSL certificate.")
        domains.cert_file(layout, app).unlink()
        domains.key_file(layout, app).unlink(missing_ok=True)
        nginx.sync_app(layout, app)
    return found
