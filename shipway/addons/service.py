"""Attaching and detaching add-ons: one release each, shared by the CLI and the API.

Rollback never provisions or deprovisions (release/rollback.py); it only restores the config
vars of the target release, and ``rollback_warnings`` says which add-ons stay attached.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from hooks.pipeline import Output
from release.config import set_config
from release.records import Release
from shipway.accounts import Accounts, now_iso
from shipway.addons import load_provider
from shipway.addons.records import Addon, AddonError, Provider
from shipway.addons.store import attached, find, save
from shipway.errors import Conflict, UsageError
from shipway.files import locked
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.names import check_config_key
from shipway.settings import Settings

DEFAULT_ATTACHMENT = {"postgresql": "DATABASE", "redis": "REDIS"}
WORDS = ("shiny", "quiet", "rapid", "amber", "cosmic", "solid", "sunny", "misty", "polar",
         "rigid", "vivid", "round", "tidy", "swift", "gentle", "cubic")

ProviderFactory = Callable[[str, Settings], Provider]


def addons_lock(layout: Layout, app: str) -> Any:
    """Held while an app's add-ons change (and while the supervisor looks at them)."""
    return locked(layout.app_dir(app) / ".addons.lock")


def addon_name(provider: str, taken: set[str]) -> str:
    while True:
        name = f"{provider}-{random.choice(WORDS)}-{random.randint(1000, 99999)}"
        if name not in taken:
            return name


def parse_spec(spec: str) -> tuple[str, str]:
    """``redis:mini`` -> (redis, mini); no plan -> (redis, "") and the provider's default."""
    provider, _, plan = spec.partition(":")
    if not provider:
        raise UsageError("Name the add-on provider, e.g. postgresql or redis:mini.")
    return provider, plan


def create_addon(
    layout: Layout, settings: Settings, *, app: str, spec: str, as_name: str | None,
    user: str, out: Output, docker: Any, provider_factory: ProviderFactory = load_provider,
) -> tuple[Addon, Release]:
    """Provision, record, and release ``Attach NAME (provider)``; nothing is kept on failure."""
    Accounts(layout).app(app)
    provider_name, plan = parse_spec(spec)
    attachment = (as_name or DEFAULT_ATTACHMENT.get(provider_name, provider_name)).upper()
    attachment = attachment.replace("-", "_")
    check_config_key(f"{attachment}_URL")
    provider = provider_factory(provider_name, settings)
    plan = plan or str(getattr(provider, "default_plan", "dev"))
    log = get_log(app=app, user=user, addon=provider_name)
    with addons_lock(layout, app):
        existing = attached(layout, app)
        if any(a.attachment == attachment for a in existing):
            raise Conflict(f"{attachment} is already attached to {app}: use --as OTHER_NAME.")
        name = addon_name(provider_name, {a.name for a in existing})
        # providers that keep data under the data home (redis) need to know where and as what
        options = {"home": str(layout.home), "addon": name}
        provisioned = provider.provision(app, plan, options)
        config = {f"{attachment}_{key}": value for key, value in provisioned.config.items()}
        addon = Addon(
            name=name, provider=provider_name,
            plan=plan, attachment=attachment, config_vars=tuple(sorted(config)),
            resource=provisioned.resource, mounts=provisioned.mounts, created_at=now_iso(),
            user=user, network=provisioned.network,
        )
        try:
            save(layout, app, [*existing, addon])
            release = set_config(
                layout, settings, app=app, changes=dict(config), user=user, out=out,
                docker=docker, description=f"Attach {attachment} ({provider_name})",
                addons=tuple(a.name for a in [*existing, addon]), check_keys=False,
            )
        except BaseException:
            save(layout, app, existing)
            provider.deprovision(provisioned.resource)
            raise
    log.info("addon.attached", name=addon.name, release=release.version)
    return addon, release


def destroy_addon(
    layout: Layout, settings: Settings, *, app: str, name: str, confirm: str | None,
    user: str, out: Output, docker: Any, provider_factory: ProviderFactory = load_provider,
) -> tuple[Addon, Release]:
    """Deprovision (sessions terminated first), then release ``Detach NAME (provider)``."""
    if confirm != app:
        raise UsageError(f"This destroys the add-on's data. To proceed, pass --confirm {app}.")
    with addons_lock(layout, app):
        addon = find(layout, app, name)
        provider = provider_factory(addon.provider, settings)
        provider.deprovision(addon.resource)
        remaining = [a for a in attached(layout, app) if a.name != addon.name]
        save(layout, app, remaining)
        release = set_config(
            layout, settings, app=app, changes={key: None for key in addon.config_vars},
            user=user, out=out, docker=docker,
            description=f"Detach {addon.attachment} ({addon.provider})",
            addons=tuple(a.name for a in remaining), check_keys=False,
        )
    get_log(app=app, user=user, addon=addon.provider).info(
        "addon.detached", name=addon.name, release=release.version)
    return addon, release


def addon_info(layout: Layout, settings: Settings, *, app: str, name: str,
               provider_factory: ProviderFactory = load_provider) -> tuple[Addon, dict[str, str]]:
    addon = find(layout, app, name)
    try:
        facts = provider_factory(addon.provider, settings).info(addon.resource)
    except AddonError as exc:
        facts = {"Status": f"unreachable ({exc.message})"}
    return addon, facts


def rollback_warnings(layout: Layout, app: str, target: Release) -> list[str]:
    """Lines to show when rolling back to ``target``: add-ons attached since stay attached."""
    lines = []
    for addon in attached(layout, app):
        if addon.name not in target.addons:
            missing = ", ".join(addon.config_vars)
            lines.append(
                f"{addon.name} ({addon.attachment}) was attached after {target.name}: it stays "
                f"provisioned, but {target.name}'s config vars do not include {missing}."
            )
    return lines
