"""An app's custom domains and its TLS certificate, as files in the app folder.

::

    apps/NAME/domains.toml   hosts = ["www.example.com", ...]   (written here)
    apps/NAME/tls/cert.pem   the certificate chain an operator added (written here)
    apps/NAME/tls/key.pem    its private key, mode 0600 (written here, never logged)

The default host ``NAME.DOMAIN`` is not stored: it follows the app's name and ``router.domain``.
Only this module reads and writes these files; ``shipway/nginx.py`` renders them for nginx.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from shipway.errors import InvalidName, UsageError
from shipway.files import write_atomically
from shipway.layout import Layout

# lowercase DNS names: labels of letters, digits and inner dashes; a leading "*." for wildcards
HOSTNAME = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Certificate:
    """The certificate in ``apps/NAME/tls/cert.pem``, as ``openssl x509`` describes it."""

    app: str
    subject: str
    hosts: tuple[str, ...]
    expires: str
    fingerprint: str


def check_hostname(host: str) -> str:
    """A host name as users type it, lowercased; raises InvalidName with the reason."""
    name = host.strip().lower().rstrip(".")
    if len(name) > 253 or not HOSTNAME.fullmatch(name):
        raise InvalidName(f"{host!r} is not a valid domain name.")
    return name


def domains_file(layout: Layout, app: str) -> Path:
    return layout.app_dir(app) / "domains.toml"


def tls_dir(layout: Layout, app: str) -> Path:
    return layout.app_dir(app) / "tls"


def cert_file(layout: Layout, app: str) -> Path:
    return tls_dir(layout, app) / "cert.pem"


def key_file(layout: Layout, app: str) -> Path:
    return tls_dir(layout, app) / "key.pem"


def read_domains(layout: Layout, app: str) -> tuple[str, ...]:
    """The app's custom domains, in the order they were added."""
    path = domains_file(layout, app)
    if not path.exists():
        return ()
    doc = tomllib.loads(path.read_text("utf-8"))
    return tuple(check_hostname(str(h)) for h in doc.get("hosts", []))


def write_domains(layout: Layout, app: str, hosts: tuple[str, ...]) -> None:
    write_atomically(domains_file(layout, app), tomli_w.dumps({"hosts": list(hosts)}))


def has_certificate(layout: Layout, app: str) -> bool:
    return cert_file(layout, app).exists() and key_file(layout, app).exists()


def check_pair(cert_pem: bytes, key_pem: bytes, scratch: Path) -> None:
    """Raise UsageError unless ``key_pem`` is the private key of the certificate ``cert_pem``.

    The stdlib's TLS context loads both as nginx will, so what passes here also loads there.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = scratch / ".check-cert.pem", scratch / ".check-key.pem"
    try:
        write_atomically(cert_path, cert_pem)
        write_atomically(key_path, key_pem, mode=0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            if "mismatch" in str(exc).lower():
                raise UsageError("The private key does not match the certificate.") from None
            raise UsageError(f"Could not read the certificate and key: {exc.reason or exc}.") \
                from None
    finally:
        cert_path.unlink(missing_ok=True)
        key_path.unlink(missing_ok=True)


def describe(layout: Layout, app: str) -> Certificate | None:
    """What the app's certificate says (subject, names, expiry), or None without one."""
    path = cert_file(layout, app)
    if not has_certificate(layout, app):
        return None
    result = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-subject", "-enddate",
         "-fingerprint", "-sha256", "-ext", "subjectAltName", "-nameopt", "RFC2253"],
        capture_output=True, text=True, check=False,
    )
    subject = expires = fingerprint = ""
    hosts: list[str] = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("subject="):
            subject = line.partition("=")[2].strip()
        elif line.startswith("notAfter="):
            expires = line.partition("=")[2].strip()
        elif "Fingerprint=" in line:
            fingerprint = line.partition("=")[2].strip()
        elif "DNS:" in line:
            hosts += [p.strip()[4:] for p in line.split(",") if p.strip().startswith("DNS:")]
    if not hosts:
        hosts = [p[3:] for p in subject.split(",") if p.startswith("CN=")]
    return Certificate(app, subject, tuple(hosts), expires, fingerprint)
