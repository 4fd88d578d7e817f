"""Add-on records and the provider protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from shipway.errors import ShipwayError


class AddonError(ShipwayError):
    """Provisioning or deprovisioning failed; nothing was recorded."""

    api_id = "addon_failed"
    http_status = 502


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a provider hands back: the config vars to set and how to find the resource again.

    ``mounts`` maps host paths to container paths the app's dynos need (e.g. a server's
    unix socket folder).
    """

    resource: dict[str, str]
    config: dict[str, str]
    mounts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Addon:
    """One attached add-on, kept in ``apps/NAME/addons.toml``."""

    name: str          # e.g. postgresql-shiny-4821
    provider: str      # e.g. postgresql
    plan: str
    attachment: str    # config var prefix, e.g. DATABASE
    config_vars: tuple[str, ...]
    resource: dict[str, str]
    mounts: dict[str, str]
    created_at: str
    user: str


class Provider(Protocol):
    name: str

    def provision(self, app: str, plan: str, options: dict[str, str]) -> Provisioned:
        """Create the resource; on failure leave nothing behind and raise AddonError."""

    def deprovision(self, resource: dict[str, str]) -> None:
        """Destroy the resource; raise AddonError if it could not be destroyed."""

    def info(self, resource: dict[str, str]) -> dict[str, str]:
        """A few facts for ``addons:info``."""
