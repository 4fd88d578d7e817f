"""The ``redis`` add-on: the app's own ``redis-server`` (Debian's package) in a container.

Who can reach it: the server's container is on one Docker network only, the app's own
``shipway-<home id>-<app>`` (not the default bridge, no published port), and the app's dynos
start on that network (``release/launch.py`` asks ``store.network_for``). Only they resolve the
add-on's name and reach its port; a random password (``requirepass``) guards it as well.

Its data lives under the data home, never in the container::

    HOME/addons/APP/NAME/redis.conf   plan, password (mode 0600)    read-only inside
    HOME/addons/APP/NAME/data/        append-only file              /data inside

so the container is disposable: ``reconcile`` (server start, add-on supervisor) starts a new one
from those files when it is gone, e.g. after a reboot or a ``docker rm``.

The image ``shipway/redis:bookworm-1`` is Shipway's stack plus Debian's ``redis-server``
(there is no registry to pull from), labelled with its recipe and rebuilt when that changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.stack import ensure_stack
from shipway.addons.records import AddonError, Provisioned
from shipway.files import locked, write_atomically
from shipway.log import get as get_log
from shipway.settings import Settings

IMAGE = "shipway/redis:bookworm-1"
RECIPE_LABEL = "shipway.redis.recipe"
PACKAGES = ("redis-server",)
INSTALL = ("set -e; apt-get update -qq; "
           "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
           "{packages} >/dev/null; apt-get clean; rm -rf /var/lib/apt/lists/*; "
           "redis-server --version")
PORT = 6379
# not under /etc/redis: the package makes that folder 0750 for its own redis user
CONF_INSIDE = "/shipway/redis.conf"
LABEL_ROLE = "shipway.role"
LABEL_ADDON = "shipway.addon"
LABEL_APP = "shipway.app"
LABEL_HOME = "shipway.home"
ROLE = "addon"
NETWORK_ROLE = "addon-network"  # only networks made here are ever removed here
# a uid of no user in the image: redis runs unprivileged even when Shipway runs as root
UNPRIVILEGED_UID = 65532
READY_SECONDS = 30.0
BUILD_SECONDS = 900

DockerFactory = Callable[[], Any]


def home_id(home: str) -> str:
    """Short identity of a data home: two installs (or tests) on one engine never collide."""
    return hashlib.sha256(home.encode("utf-8")).hexdigest()[:10]


def network_name(home: str, app: str) -> str:
    return f"shipway-{home_id(home)}-{app}"


def container_name(home: str, app: str, addon: str) -> str:
    return f"shipway-{home_id(home)}-{app}-{addon}"


def render_conf(*, password: str, maxmemory_mb: int, addon: str, app: str) -> str:
    """``redis.conf`` for one add-on (Heroku's defaults: noeviction, AOF every second)."""
    return "\n".join([
        f"# Written by Shipway for the redis add-on {addon} of {app}.",
        "bind * -::*",
        f"port {PORT}",
        f"requirepass {password}",
        "dir /data",
        "appendonly yes",
        "appendfsync everysec",
        'save ""',
        f"maxmemory {maxmemory_mb}mb",
        "maxmemory-policy noeviction",
        'logfile ""',
        "daemonize no",
        "",
    ])


def password_of(conf: str) -> str:
    found = re.search(r"^requirepass (\S+)$", conf, re.MULTILINE)
    return found.group(1) if found else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


class _LogOutput:
    """Stack build lines go to the log: a provider has no terminal of its own."""

    def line(self, text: str) -> None:
        get_log().info("redis.stack", line=text)

    def error(self, text: str) -> None:
        get_log().warning("redis.stack", line=text)


def _image_label(docker: Any, name: str) -> str | None:
    import docker as docker_sdk

    try:
        found = docker.images.get(name)
    except docker_sdk.errors.ImageNotFound:
        return None
    labels = (found.attrs.get("Config") or {}).get("Labels") or {}
    return str(labels.get(RECIPE_LABEL) or "") or None


def ensure_image(settings: Settings, *, docker: Any) -> str:
    """The Redis image, built on first use from the stack and Debian's package (about 30 s)."""
    stack = ensure_stack(settings, docker=docker, out=_LogOutput())
    script = INSTALL.format(packages=" ".join(PACKAGES))
    digest = hashlib.sha256(f"{docker.images.get(stack).id}\n{script}".encode()).hexdigest()
    if _image_label(docker, IMAGE) == digest:
        return IMAGE
    lock = Path(tempfile.gettempdir()) / "shipway-redis-image.lock"
    with locked(lock):
        if _image_label(docker, IMAGE) == digest:
            return IMAGE
        get_log().info("redis.image_building", image=IMAGE, base=stack)
        builder = docker.containers.run(stack, ["bash", "-c", script], detach=True,
                                        labels={LABEL_ROLE: "redis-image"}, user="0")
        try:
            status = builder.wait(timeout=BUILD_SECONDS).get("StatusCode", 1)
            if status != 0:
                tail = builder.logs(tail=3).decode("utf-8", "replace")
                raise AddonError(f"Could not build the Redis image: apt-get exited with "
                                 f"status {status}: {_one_line(tail)}")
            repository, _, tag = IMAGE.rpartition(":")
            builder.commit(repository=repository, tag=tag, changes=[
                f"LABEL {RECIPE_LABEL}={digest}", 'CMD ["redis-server"]', "WORKDIR /data"])
        finally:
            with contextlib.suppress(Exception):
                builder.remove(force=True)
    return IMAGE


def ensure_network(docker: Any, name: str, *, home: str, app: str) -> Any:
    """The app's network; one made by someone else (dyno networking) is used as it is."""
    import docker as docker_sdk

    with contextlib.suppress(docker_sdk.errors.NotFound):
        return docker.networks.get(name)
    try:
        return docker.networks.create(name, driver="bridge", check_duplicate=True,
                                      labels={LABEL_HOME: home, LABEL_APP: app,
                                              LABEL_ROLE: NETWORK_ROLE})
    except docker_sdk.errors.APIError:
        return docker.networks.get(name)  # made at the same moment by another process


def remove_network_if_unused(docker: Any, name: str) -> None:
    """Best effort: a network with containers still on it (old dynos stopping) stays."""
    import docker as docker_sdk

    try:
        network = docker.networks.get(name)
        network.reload()
        if not network.attrs.get("Containers"):
            network.remove()
    except docker_sdk.errors.APIError:
        pass


class RedisProvider:
    """Provisions one redis-server container per add-on; see the module docstring."""

    name = "redis"
    default_plan = "mini"

    def __init__(self, settings: Settings, docker_factory: DockerFactory | None = None) -> None:
        self.settings = settings
        self.docker_factory = docker_factory

    @contextlib.contextmanager
    def _docker(self) -> Any:
        import docker as docker_sdk

        try:
            client = (self.docker_factory or docker_sdk.from_env)()
        except docker_sdk.errors.DockerException as exc:
            raise AddonError(f"Could not reach the Docker engine: {_one_line(str(exc))}") from exc
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def plan_size(self, plan: str) -> int:
        plans = self.settings.redis_plans
        if plan not in plans:
            known = ", ".join(f"{name} ({size} MB)" for name, size in plans.items())
            raise AddonError(f"Unknown plan redis:{plan}. Plans: {known}.")
        return plans[plan]

    # the provider protocol -------------------------------------------------------------------
    def provision(self, app: str, plan: str, options: dict[str, str]) -> Provisioned:
        size = self.plan_size(plan)
        home, addon = options["home"], options["addon"]
        folder = Path(home) / "addons" / app / addon
        resource = {"home": home, "app": app, "addon": addon, "plan": plan,
                    "maxmemory_mb": str(size), "folder": str(folder),
                    "container": container_name(home, app, addon),
                    "network": network_name(home, app)}
        password = secrets.token_hex(32)
        if folder.exists():
            raise AddonError(f"{folder} exists already: remove it or choose another name.")
        with self._docker() as docker:
            try:
                image = ensure_image(self.settings, docker=docker)
                (folder / "data").mkdir(parents=True)
                write_atomically(folder / "redis.conf", render_conf(
                    password=password, maxmemory_mb=size, addon=addon, app=app), mode=0o600)
                self._start(docker, resource, image)
            except BaseException:
                self._remove(docker, resource)
                raise
        get_log(app=app, addon=addon).info("redis.provisioned", plan=plan, maxmemory_mb=size)
        url = f"redis://:{password}@{addon}:{PORT}"
        return Provisioned(resource=resource, config={"URL": url},
                           network=resource["network"])

    def deprovision(self, resource: dict[str, str]) -> None:
        with self._docker() as docker:
            self._remove(docker, resource)

    def info(self, resource: dict[str, str]) -> dict[str, str]:
        facts = {"Plan": f"redis:{resource['plan']} ({resource['maxmemory_mb']} MB)"}
        with self._docker() as docker:
            container = self._container(docker, resource)
            if container is None:
                return {**facts, "Status": "missing (the supervisor starts it again)"}
            state = str((container.attrs.get("State") or {}).get("Status", container.status))
            facts["Status"] = "available" if state == "running" else state
            if state != "running":
                return facts
            text = self._cli(container, resource, "INFO").output.decode("utf-8", "replace")
        found = dict(re.findall(r"^(\w+):(.*?)\r?$", text, re.MULTILINE))
        facts["Version"] = found.get("redis_version", "?")
        facts["Memory used"] = (f"{found.get('used_memory_human', '?')} of "
                                f"{resource['maxmemory_mb']} MB")
        keys = sum(int(m) for m in re.findall(r"^db\d+:keys=(\d+)", text, re.MULTILINE))
        facts["Keys"] = str(keys)
        facts["Clients"] = found.get("connected_clients", "?")
        facts["Persistence"] = ("append-only file" if found.get("aof_enabled") == "1"
                                else "none")
        return facts

    def reconcile(self, resource: dict[str, str]) -> str:
        """Start the server again from its data when it is not running."""
        with self._docker() as docker:
            container = self._container(docker, resource)
            if container is not None and container.status == "running":
                return "running"
            if not (Path(resource["folder"]) / "redis.conf").exists():
                return "no data"
            if container is not None:
                container.remove(force=True)
            self._start(docker, resource, ensure_image(self.settings, docker=docker))
        get_log(app=resource["app"], addon=resource["addon"]).info("redis.restarted")
        return "started"

    # containers ------------------------------------------------------------------------------
    def _container(self, docker: Any, resource: dict[str, str]) -> Any:
        import docker as docker_sdk

        try:
            return docker.containers.get(resource["container"])
        except docker_sdk.errors.NotFound:
            return None

    def _uid(self, folder: Path) -> int:
        uid = os.getuid()
        if uid != 0:
            return uid
        for path in (folder, folder / "data", folder / "redis.conf", *(folder / "data").rglob("*")):
            os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        return UNPRIVILEGED_UID

    def _start(self, docker: Any, resource: dict[str, str], image: str) -> Any:
        folder = Path(resource["folder"])
        network = resource["network"]
        ensure_network(docker, network, home=resource["home"], app=resource["app"])
        uid = self._uid(folder)
        size = int(resource["maxmemory_mb"])
        container = docker.containers.run(
            image, ["redis-server", CONF_INSIDE],
            name=resource["container"],
            labels={LABEL_ROLE: ROLE, LABEL_ADDON: resource["addon"], LABEL_APP: resource["app"],
                    LABEL_HOME: resource["home"]},
            user=f"{uid}:{uid}",
            volumes={str(folder / "redis.conf"): {"bind": CONF_INSIDE, "mode": "ro"},
                     str(folder / "data"): {"bind": "/data", "mode": "rw"}},
            network=network,
            networking_config={network: docker.api.create_endpoint_config(
                aliases=[resource["addon"]])},
            # maxmemory counts the data only; an AOF rewrite forks and copies pages
            mem_limit=f"{2 * size + 32}m", pids_limit=64, cap_drop=["ALL"],
            security_opt=["no-new-privileges"], read_only=True,
            restart_policy={"Name": "unless-stopped"}, detach=True,
        )
        self._wait_ready(container, resource)
        return container

    def _cli(self, container: Any, resource: dict[str, str], *args: str) -> Any:
        password = password_of((Path(resource["folder"]) / "redis.conf").read_text("utf-8"))
        return container.exec_run(["redis-cli", "--no-auth-warning", *args],
                                  environment={"REDISCLI_AUTH": password})

    def _wait_ready(self, container: Any, resource: dict[str, str]) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            container.reload()
            restarts = int(container.attrs.get("RestartCount") or 0)
            if container.status in ("exited", "dead") or restarts > 0:
                tail = container.logs(tail=3).decode("utf-8", "replace")
                raise AddonError(f"redis-server exited on start: {_one_line(tail)}")
            if container.status == "running":
                answer = self._cli(container, resource, "PING")
                # PONG once serving; LOADING while it replays the append-only file
                if answer.exit_code == 0 and b"PONG" in answer.output:
                    return
            if time.monotonic() > deadline:
                raise AddonError(f"redis-server did not answer within {READY_SECONDS:g} s.")
            time.sleep(0.1)

    def _remove(self, docker: Any, resource: dict[str, str]) -> None:
        container = self._container(docker, resource)
        if container is not None:
            container.remove(force=True)
        shutil.rmtree(resource["folder"], ignore_errors=True)
        remove_network_if_unused(docker, resource["network"])
