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
    unix socket folder); ``network`` is a Docker network the app's dynos join (e.g. the one
    its own Redis server listens on), empty when none is needed.
    """

    resource: dict[str, str]
    config: dict[str, str]
    mounts: dict[str, str] = field(default_factory=dict)
    network: str = ""


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
    network: str = ""


class Provider(Protocol):
    name: str

    def provision(self, app: str, plan: str, options: dict[str, str]) -> Provisioned:
        """Create the resource; on failure leave nothing behind and raise AddonError."""

    def deprovision(self, resource: dict[str, str]) -> None:
        """Destroy the resource; raise AddonError if it could not be destroyed."""

    def info(self, resource: dict[str, str]) -> dict[str, str]:
        """A few facts for ``addons:info``."""


class Supervised(Protocol):
    """A provider that runs the resource's process itself (e.g. a Redis container).

    ``reconcile`` runs at server start and from the add-on supervisor: it starts the process
    again, from the data it keeps, when it is not running.
    """

    def reconcile(self, resource: dict[str, str]) -> str:
        """Make the process run; answer what was done (``running``, ``started``)."""
