"""Server settings, read from ``HOME/shipway.toml``.

Every setting has a default; a bad value stops the server at start with a message naming the key.

============================  ==============  ==============================================
key                           default         meaning
============================  ==============  ==============================================
``host``                      ``127.0.0.1``   address of the git/API server
``port``                      ``5000``        port of the git/API server
``http.header_timeout``      10              seconds a client has to send a request head
``auth.max_failures``         10              wrong credentials per address (and per user)
``auth.failure_window``       60              ... within this many seconds, then 429
``receive.max_input_size``    1 GiB           largest pack a push may send (bytes)
``receive.max_ref_updates``   1000            most ref-update lines in one push
``build.timeout``             900             wall-clock limit of a build (seconds)
``build.memory``              ``2g``          memory limit of a build container
``build.cpus``                2.0             CPU limit of a build container
``build.pids``                512             pids limit of a build container
``build.output_limit``        10 MB           build output kept and streamed (bytes)
``build.disk``                2 GB            disk for everything a build writes (bytes)
``slug.max_size``             500 MB          largest slug (compressed, bytes)
``slug.max_unpacked_size``    1 GB            largest slug, unpacked (bytes)
``stack.image``               ``""``          stack image; empty = Shipway's own Debian stack
``stack.ca_bundle``           host bundle     CA bundle copied into the stack
``router.host``               ``127.0.0.1``   address of the app router
``router.port``               ``8080``        port of the app router
``router.domain``             ``localhost``   apps are served at NAME.DOMAIN
``router.https_port``         ``8443``        HTTPS port of the router (apps with certs)
``router.max_body_size``      100 MB          largest request body (bytes); more is 413
``launch.boot_timeout``       60              seconds a web process has to bind $PORT
``launch.stop_grace``         30              seconds between SIGTERM and SIGKILL
``launch.memory``             ``512m``        memory limit of a dyno
``launch.pids``               256             pids limit of a dyno
``launch.cpus``               1.0             CPU limit of a dyno
``launch.settle``             2               seconds new web dynos are watched after the switch
``run.timeout``               86400           seconds a one-off dyno may run (then stopped)
``run.rendezvous_port``       0               port ``run`` attaches through (0: any free one)
``postgresql_url``            ``""``          server the postgresql add-on administers
``redis.plans``               mini, premium   redis add-on plans: a table of NAME = megabytes
============================  ==============  ==============================================
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from shipway.errors import SettingsError

GiB = 1024**3
MB = 1000**2
# Heroku Data for Redis' smallest plans, in megabytes of maxmemory
REDIS_PLANS = {"mini": 25, "premium": 256}
# settings whose value is a whole table, not more dotted keys
TABLES = {"redis.plans": "redis_plans"}
PORTS = ("port", "router_port", "router_https_port", "run_rendezvous_port")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    http_header_timeout: float = 10.0
    auth_max_failures: int = 10
    auth_failure_window: float = 60.0
    receive_max_input_size: int = GiB
    receive_max_ref_updates: int = 1000
    build_timeout: float = 900.0
    build_memory: str = "2g"
    build_cpus: float = 2.0
    build_pids: int = 512
    build_output_limit: int = 10 * MB
    build_disk: int = 2000 * MB
    slug_max_size: int = 500 * MB
    slug_max_unpacked_size: int = 1000 * MB
    stack_image: str = ""
    stack_ca_bundle: str = "/etc/ssl/certs/ca-certificates.crt"
    router_host: str = "127.0.0.1"
    router_port: int = 8080
    router_domain: str = "localhost"
    router_https_port: int = 8443
    router_max_body_size: int = 100 * MB
    launch_boot_timeout: float = 60.0
    launch_stop_grace: float = 30.0
    launch_memory: str = "512m"
    launch_pids: int = 256
    launch_cpus: float = 1.0
    launch_settle: float = 2.0
    run_timeout: float = 86400.0
    run_rendezvous_port: int = 0
    postgresql_url: str = ""
    redis_plans: dict[str, int] = field(default_factory=lambda: dict(REDIS_PLANS))
    extra: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted not in TABLES:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _plans(path: Path, dotted: str, value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise SettingsError(f"{path}: setting {dotted!r} must be a table of NAME = megabytes")
    for plan, size in value.items():
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise SettingsError(
                f"{path}: setting {dotted}.{plan} must be a positive number of megabytes, "
                f"got {size!r}")
    return {str(k): int(v) for k, v in value.items()}


def load_settings(path: Path) -> Settings:
    """Read settings; missing file means all defaults."""
    if not path.exists():
        return Settings()
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    known = {f.name: f for f in fields(Settings) if f.name != "extra"}
    values: dict[str, Any] = {}
    value: Any
    for dotted, value in _flatten(doc).items():
        name = dotted.replace(".", "_")
        spec = known.get(name)
        if spec is None:
            raise SettingsError(f"{path}: unknown setting {dotted!r}")
        if dotted in TABLES:
            values[name] = _plans(path, dotted, value)
            continue
        default = getattr(Settings(), name)
        expected: tuple[type, ...] = (type(default),)
        if isinstance(default, float):
            expected = (int, float)
        number: Any = value
        if isinstance(value, bool) or not isinstance(value, expected):
            raise SettingsError(
                f"{path}: setting {dotted!r} must be {type(default).__name__}, got {value!r}"
            )
        if isinstance(default, (int, float)) and number <= 0 and name not in PORTS:
            raise SettingsError(f"{path}: setting {dotted!r} must be positive, got {value!r}")
        if name in PORTS and not 0 <= number <= 65535:
            raise SettingsError(f"{path}: setting {dotted!r} must be a TCP port, got {value!r}")
        values[name] = float(number) if isinstance(default, float) else value
    return Settings(**values)
