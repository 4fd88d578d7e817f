"""Pure logic of the data add-ons: schedules, plans, URLs, the supervisor's decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shipway.accounts import now_iso
from shipway.addons.pgbackups import Backup, Schedule, due, latest_slot, parse_at
from shipway.addons.pgdatabase import host_url
from shipway.addons.records import Addon, AddonError, Provisioned
from shipway.addons.redis import (
    RedisProvider,
    container_name,
    network_name,
    password_of,
    render_conf,
)
from shipway.addons.service import parse_spec
from shipway.addons.store import network_for, save
from shipway.addons.supervise import reconcile_addons
from shipway.apps import create_app
from shipway.errors import SettingsError, UsageError
from shipway.layout import Layout
from shipway.settings import Settings, load_settings


def schedule(at: str = "02:00", zone: str = "UTC", created: str = "2026-03-01T12:00:00Z"
             ) -> Schedule:
    return Schedule(database="DATABASE", at=at, timezone=zone, keep=7, created_at=created,
                    user="dev@example.com")


def scheduled_backup(started: str) -> Backup:
    return Backup(id="b001", database="DATABASE", addon="postgresql-x", size=1, sha256="0",
                  started_at=started, finished_at=started, kind="scheduled", user="scheduler")


def test_at_takes_hh_mm_and_an_optional_zone() -> None:
    assert parse_at("2:05") == ("02:05", "UTC")
    assert parse_at("23:59 Europe/Paris") == ("23:59", "Europe/Paris")
    for bad in ("24:00", "2pm", "02:60", ""):
        with pytest.raises(UsageError, match="Invalid --at"):
            parse_at(bad)
    with pytest.raises(UsageError, match="Unknown time zone 'Mars/Olympus'"):
        parse_at("02:00 Mars/Olympus")


def test_the_latest_slot_is_today_once_the_hour_has_passed_else_yesterday() -> None:
    s = schedule("02:00")
    assert latest_slot(s, datetime(2026, 3, 5, 1, 59, tzinfo=UTC)) == datetime(
        2026, 3, 4, 2, 0, tzinfo=UTC)
    assert latest_slot(s, datetime(2026, 3, 5, 2, 0, tzinfo=UTC)) == datetime(
        2026, 3, 5, 2, 0, tzinfo=UTC)
    # 02:00 in Paris is 01:00 UTC in winter
    paris = schedule("02:00", "Europe/Paris")
    assert latest_slot(paris, datetime(2026, 1, 10, 1, 30, tzinfo=UTC)) == datetime(
        2026, 1, 10, 1, 0, tzinfo=UTC)


def test_a_backup_is_due_once_per_slot_and_never_for_a_slot_before_the_schedule() -> None:
    s = schedule("02:00", created="2026-03-01T12:00:00Z")
    assert not due(s, [], datetime(2026, 3, 1, 23, 0, tzinfo=UTC))  # 02:00 passed before
    assert due(s, [], datetime(2026, 3, 2, 2, 0, 30, tzinfo=UTC))
    taken = [scheduled_backup("2026-03-02T02:00:30Z")]
    assert not due(s, taken, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    # the server was down at 02:00 on the 3rd: taken once when it is back
    assert due(s, taken, datetime(2026, 3, 3, 7, 0, tzinfo=UTC))


def test_redis_plans_come_from_the_server_settings(tmp_path: Path) -> None:
    assert Settings().redis_plans == {"mini": 25, "premium": 256}
    path = tmp_path / "shipway.toml"
    path.write_text("[redis.plans]\nsmall = 10\nlarge = 1024\n")
    settings = load_settings(path)
    assert settings.redis_plans == {"small": 10, "large": 1024}
    provider = RedisProvider(settings)
    assert provider.plan_size("large") == 1024
    with pytest.raises(AddonError) as caught:
        provider.plan_size("mini")
    assert caught.value.message == ("Unknown plan redis:mini. Plans: small (10 MB), "
                                    "large (1024 MB).")
    path.write_text("[redis.plans]\nsmall = '10mb'\n")
    with pytest.raises(SettingsError, match="redis.plans.small must be a positive number"):
        load_settings(path)
    path.write_text("[redis]\nplans = 3\n")
    with pytest.raises(SettingsError, match="'redis.plans' must be a table"):
        load_settings(path)


def test_redis_conf_names_plan_password_and_persistence() -> None:
    conf = render_conf(password="s3cret", maxmemory_mb=25, addon="redis-x-1", app="web")
    assert "maxmemory 25mb\n" in conf and "appendonly yes\n" in conf
    assert "maxmemory-policy noeviction\n" in conf and "dir /data\n" in conf
    assert password_of(conf) == "s3cret"
    home = "/srv/shipway"
    assert network_name(home, "web").startswith("shipway-") and network_name(home, "web") \
        .endswith("-web")
    assert network_name(home, "web") != network_name("/srv/other", "web")
    assert container_name(home, "web", "redis-x-1") != container_name(home, "api", "redis-x-1")


def test_provider_specs_leave_the_default_plan_to_the_provider() -> None:
    assert parse_spec("redis") == ("redis", "")
    assert parse_spec("redis:premium") == ("redis", "premium")
    with pytest.raises(UsageError):
        parse_spec(":mini")


def test_the_dynos_url_maps_back_to_the_hosts_socket_folder() -> None:
    url = ("postgresql://app_1:p%40ss@/app_1?host=/run/shipway/postgresql&port=5433")
    host, password = host_url(url, {"/var/run/pg": "/run/shipway/postgresql"})
    assert host == "postgresql://app_1@/app_1?host=/var/run/pg&port=5433"
    assert password == "p@ss"
    tcp, _ = host_url("postgresql://u:p@db.internal:5432/u", {})
    assert tcp == "postgresql://u@db.internal:5432/u"


def addon(name: str, provider: str, network: str = "") -> Addon:
    return Addon(name=name, provider=provider, plan="mini", attachment=name.upper(),
                 config_vars=(f"{name.upper()}_URL",), resource={"id": name}, mounts={},
                 created_at=now_iso(), user="dev@example.com", network=network)


class FakeProvider:
    def __init__(self) -> None:
        self.reconciled: list[dict[str, str]] = []

    def provision(self, app: str, plan: str, options: dict[str, str]) -> Provisioned:
        raise AssertionError("not called")

    def deprovision(self, resource: dict[str, str]) -> None:
        raise AssertionError("not called")

    def info(self, resource: dict[str, str]) -> dict[str, str]:
        return {}

    def reconcile(self, resource: dict[str, str]) -> str:
        self.reconciled.append(resource)
        if resource["id"] == "broken":
            raise AddonError("cannot start")
        return "started"


class Unsupervised:
    name = "postgresql"


def test_the_supervisor_reconciles_supervised_add_ons_and_survives_a_failing_one(
        layout: Layout) -> None:
    create_app(layout, "web", "dev@example.com")
    create_app(layout, "api", "dev@example.com")
    save(layout, "web", [addon("cache", "redis", "net-web"), addon("database", "postgresql")])
    save(layout, "api", [addon("broken", "redis", "net-api")])
    fake = FakeProvider()
    providers: dict[str, Any] = {"redis": fake, "postgresql": Unsupervised()}
    outcomes = reconcile_addons(layout, Settings(),
                                provider_factory=lambda name, settings: providers[name])
    assert outcomes == {"broken": "failed: cannot start", "cache": "started"}
    assert [r["id"] for r in fake.reconciled] == ["broken", "cache"]
    assert network_for(layout, "web") == "net-web"
    save(layout, "web", [addon("database", "postgresql")])
    assert network_for(layout, "web") is None


class FakeContainer:
    def __init__(self, app: str, name: str) -> None:
        self.labels = {"shipway.app": app, "shipway.addon": name, "shipway.role": "addon"}
        self.removed = False

    def remove(self, force: bool = False) -> None:
        self.removed = True


class FakeDocker:
    """Just what the supervisor's sweep asks of Docker: list containers and networks."""

    def __init__(self, containers: list[FakeContainer]) -> None:
        self.containers = self
        self.networks = self
        self.found = containers

    def list(self, **filters: Any) -> list[Any]:
        return list(self.found) if "all" in filters else []


def test_add_on_containers_nobody_owns_go_with_their_data(layout: Layout) -> None:
    create_app(layout, "web", "dev@example.com")
    save(layout, "web", [addon("redis-kept-1", "redis", "net-web")])
    kept, stray, of_gone_app = (FakeContainer("web", "redis-kept-1"),
                                FakeContainer("web", "redis-stray-2"),
                                FakeContainer("gone", "redis-old-3"))
    for app, name in (("web", "redis-stray-2"), ("gone", "redis-old-3"), ("web", "redis-kept-1")):
        (layout.addons_dir / app / name / "data").mkdir(parents=True)
    strange = FakeContainer("../etc", "x")  # labels are not trusted as paths
    docker = FakeDocker([kept, stray, of_gone_app, strange])
    reconcile_addons(layout, Settings(), docker=docker,
                     provider_factory=lambda name, settings: Unsupervised())  # type: ignore
    assert (kept.removed, stray.removed, of_gone_app.removed, strange.removed) == (
        False, True, True, False)
    assert sorted(str(p.relative_to(layout.addons_dir)) for p in layout.addons_dir.glob("*/*")) \
        == ["web/redis-kept-1"]
