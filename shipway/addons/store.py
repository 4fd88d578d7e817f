"""Attached add-ons of an app: ``apps/NAME/addons.toml``."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w

from shipway.addons.records import Addon
from shipway.errors import NotFound
from shipway.files import write_atomically
from shipway.layout import Layout


def _path(layout: Layout, app: str) -> Any:
    return layout.app_dir(app) / "addons.toml"


def attached(layout: Layout, app: str) -> list[Addon]:
    path = _path(layout, app)
    if not path.exists():
        return []
    doc = tomllib.loads(path.read_text("utf-8"))
    return [
        Addon(
            name=a["name"], provider=a["provider"], plan=a["plan"], attachment=a["attachment"],
            config_vars=tuple(a.get("config_vars", [])), resource=dict(a.get("resource", {})),
            mounts=dict(a.get("mounts", {})), created_at=a["created_at"], user=a["user"],
            network=str(a.get("network", "")),
        )
        for a in doc.get("addons", [])
    ]


def save(layout: Layout, app: str, addons: list[Addon]) -> None:
    doc = {
        "addons": [
            {
                "name": a.name, "provider": a.provider, "plan": a.plan,
                "attachment": a.attachment, "config_vars": list(a.config_vars),
                "resource": a.resource, "mounts": a.mounts, "created_at": a.created_at,
                "user": a.user, "network": a.network,
            }
            for a in addons
        ]
    }
    write_atomically(_path(layout, app), tomli_w.dumps(doc), mode=0o600)


def find(layout: Layout, app: str, name: str) -> Addon:
    """By add-on name or attachment name (``postgresql-shiny-4821`` or ``DATABASE``)."""
    for addon in attached(layout, app):
        if name in (addon.name, addon.attachment):
            return addon
    raise NotFound(f"Couldn't find that add-on: {name} (on {app}).")


def mounts_for(layout: Layout, app: str) -> dict[str, str]:
    """Host folder -> container folder for every attached add-on (for the app's dynos)."""
    found: dict[str, str] = {}
    for addon in attached(layout, app):
        found.update(addon.mounts)
    return found


def network_for(layout: Layout, app: str) -> str | None:
    """The Docker network the app's dynos join for their add-ons (one per app), if any."""
    for addon in attached(layout, app):
        if addon.network:
            return addon.network
    return None
