"""Keeping add-on processes running, as ``release/reconcile.py`` keeps dynos running.

``reconcile_addons`` runs at server start, before the dynos (a worker that boots before its
Redis would crash), and then every few seconds from the ``AddonSupervisor`` thread. Docker's
restart policy covers a crash; this covers a container removed or stopped by hand, and a host
that came back without it. Add-on containers of this data home that no attached add-on owns
(an app destroyed with its add-ons) are removed, and so are the add-on networks no add-on
needs once no container is left on them (old dynos stop a little after a detach).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
from collections.abc import Callable
from typing import Any

from shipway.addons import load_provider
from shipway.addons.records import Provider
from shipway.addons.redis import NETWORK_ROLE, remove_network_if_unused
from shipway.addons.service import addons_lock
from shipway.addons.store import attached
from shipway.errors import ShipwayError
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.names import APP_NAME
from shipway.settings import Settings

RECHECK_SECONDS = 5.0
LABEL_ROLE = "shipway.role"
LABEL_HOME = "shipway.home"
LABEL_ADDON = "shipway.addon"
LABEL_APP = "shipway.app"

ADDON_NAME = re.compile(r"[a-z][a-z0-9-]{1,62}")

ProviderFactory = Callable[[str, Settings], Provider]


def _apps(layout: Layout) -> list[str]:
    if not layout.apps_dir.is_dir():
        return []
    return sorted(p.name for p in layout.apps_dir.iterdir() if (p / "app.toml").exists())


def reconcile_addons(layout: Layout, settings: Settings, *, docker: Any | None = None,
                     provider_factory: ProviderFactory = load_provider) -> dict[str, str]:
    """Start every supervised add-on that is not running; answers add-on name -> outcome."""
    providers: dict[str, Any] = {}
    outcomes: dict[str, str] = {}
    owned: set[tuple[str, str]] = set()
    for app in _apps(layout):
        with addons_lock(layout, app):
            owned.update((app, addon.name) for addon in attached(layout, app))
            outcomes.update(_reconcile_app(layout, settings, app, providers, provider_factory))
    if docker is not None:
        _remove_orphans(layout, docker, owned)
        _remove_unused_networks(layout, docker)
    return outcomes


def _reconcile_app(layout: Layout, settings: Settings, app: str, providers: dict[str, Any],
                   provider_factory: ProviderFactory) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for addon in attached(layout, app):
        if addon.provider not in providers:
            try:
                providers[addon.provider] = provider_factory(addon.provider, settings)
            except ShipwayError:
                providers[addon.provider] = None
        provider = providers[addon.provider]
        if provider is None or not hasattr(provider, "reconcile"):
            continue
        log = get_log(app=app, addon=addon.name)
        try:
            outcomes[addon.name] = provider.reconcile(addon.resource)
        except (ShipwayError, OSError) as exc:
            outcomes[addon.name] = f"failed: {exc}"
            log.error("addon.reconcile_failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one add-on's trouble must not stop others
            outcomes[addon.name] = f"failed: {type(exc).__name__}"
            log.exception("addon.reconcile_crashed")
    return outcomes


def _remove_orphans(layout: Layout, docker: Any, owned: set[tuple[str, str]]) -> None:
    import docker as docker_sdk

    try:
        found = docker.containers.list(all=True, filters={"label": [
            f"{LABEL_ROLE}=addon", f"{LABEL_HOME}={layout.home}"]})
    except docker_sdk.errors.APIError:
        return
    for container in found:
        app, name = container.labels.get(LABEL_APP, ""), container.labels.get(LABEL_ADDON, "")
        if (app, name) in owned or not APP_NAME.fullmatch(app) or not ADDON_NAME.fullmatch(name):
            continue
        if layout.app_file(app).exists():
            # it may be an add-on being provisioned right now: look again under the lock
            with addons_lock(layout, app):
                if any(a.name == name for a in attached(layout, app)):
                    continue
                _remove(layout, container, app, name)
        else:
            _remove(layout, container, app, name)


def _remove_unused_networks(layout: Layout, docker: Any) -> None:
    import docker as docker_sdk

    try:
        found = docker.networks.list(filters={"label": [
            f"{LABEL_ROLE}={NETWORK_ROLE}", f"{LABEL_HOME}={layout.home}"]})
    except docker_sdk.errors.APIError:
        return
    for network in found:
        app = (network.attrs.get("Labels") or {}).get(LABEL_APP, "")
        needed = bool(app) and layout.app_file(app).exists() and any(
            a.network == network.name for a in attached(layout, app))
        if not needed:
            remove_network_if_unused(docker, network.name)


def _remove(layout: Layout, container: Any, app: str, name: str) -> None:
    """An orphan goes with the data it kept (``HOME/addons/APP/NAME``)."""
    import docker as docker_sdk

    get_log(app=app, addon=name).warning("addon.orphan_removed")
    with contextlib.suppress(docker_sdk.errors.APIError):
        container.remove(force=True)
    shutil.rmtree(layout.addons_dir / app / name, ignore_errors=True)


class AddonSupervisor:
    """A daemon thread that re-runs ``reconcile_addons`` every ``RECHECK_SECONDS``."""

    def __init__(self, layout: Layout, settings: Settings, *, docker: Any,
                 provider_factory: ProviderFactory = load_provider,
                 interval: float = RECHECK_SECONDS) -> None:
        self.layout = layout
        self.settings = settings
        self.docker = docker
        self.provider_factory = provider_factory
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipway-addons", daemon=True)

    def start(self) -> AddonSupervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                reconcile_addons(self.layout, self.settings, docker=self.docker,
                                 provider_factory=self.provider_factory)
            except Exception:  # noqa: BLE001 - keep supervising; the log has the trace
                get_log().exception("addon.supervisor_crashed")
