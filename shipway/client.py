"""The CLI's side of the API: credentials in ``~/.netrc``, the server in a config file, and
``Backend``: the same operations done locally (service functions) or remotely (HTTP).

``~/.netrc`` holds ``machine HOST login EMAIL password TOKEN`` as the Heroku CLI writes it, so
``git push`` over HTTP authenticates with no extra step. Other hosts' entries are kept byte for
byte. The server URL is kept in ``$XDG_CONFIG_HOME/shipway/config.toml`` (``server = "..."``);
``SHIPWAY_SERVER`` overrides it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import tomli_w

from builder.slug import Slug
from hooks.pipeline import Output
from release.launch import Dyno
from release.oneoff import Attachment
from release.records import Release
from shipway import openapi, slugtools
from shipway.errors import (
    AccessDenied,
    Conflict,
    NotFound,
    ShipwayError,
    Unauthorized,
    UsageError,
)
from shipway.layout import Layout
from shipway.settings import Settings
from shipway.slugtools import PrunePlan, SlugDiff, SlugEntry, SlugUse, VerifyResult

AppInfo = openapi.AppInfo
DockerFactory = Callable[[], Any]
REMOTE_NAME = "platform"
TIMEOUT = 60.0
LONG_TIMEOUT = 1800.0
CHUNK = 1 << 16


# the config file and ~/.netrc --------------------------------------------------------------
def config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "shipway" / "config.toml"


def saved_server() -> str | None:
    """The server from ``SHIPWAY_SERVER``, else from the config file."""
    env = os.environ.get("SHIPWAY_SERVER")
    if env:
        return env.rstrip("/")
    path = config_file()
    if not path.exists():
        return None
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    server = doc.get("server")
    return str(server).rstrip("/") if server else None


def save_server(url: str | None) -> None:
    from shipway.files import write_atomically

    path = config_file()
    doc: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(tomllib.TOMLDecodeError):
            doc = tomllib.loads(path.read_text("utf-8"))
    if url:
        doc["server"] = url
    else:
        doc.pop("server", None)
    write_atomically(path, tomli_w.dumps(doc), mode=0o600)


def netrc_file() -> Path:
    return Path(os.environ.get("NETRC") or Path.home() / ".netrc")


def server_host(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise UsageError(f"Invalid server URL {url!r}: use http://HOST:PORT.")
    return host


@dataclass(frozen=True, slots=True)
class NetrcEntry:
    """One ``machine`` entry of ``~/.netrc``: ``start``..``end`` is its span in the text."""

    host: str
    login: str
    password: str
    start: int
    end: int


TOKEN = re.compile(r"\S+")


def netrc_entries(text: str) -> list[NetrcEntry]:
    """``machine`` entries with their text spans (``default`` and ``macdef`` are skipped)."""
    tokens = [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]
    starts = [i for i, (word, _, _) in enumerate(tokens) if word in ("machine", "default",
                                                                     "macdef")]
    found = []
    for n, i in enumerate(starts):
        stop = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        words = [w for w, _, _ in tokens[i:stop]]
        if words[0] != "machine" or len(words) < 2:
            continue
        values = dict(zip(words[2::2], words[3::2], strict=False))
        end = tokens[starts[n + 1]][1] if n + 1 < len(starts) else len(text)
        found.append(NetrcEntry(words[1], values.get("login", ""), values.get("password", ""),
                                tokens[i][1], end))
    return found


def read_credentials(host: str) -> tuple[str, str] | None:
    path = netrc_file()
    if not path.exists():
        return None
    for entry in netrc_entries(path.read_text("utf-8")):
        if entry.host == host and entry.password:
            return entry.login, entry.password
    return None


def _without(text: str, host: str) -> str:
    for entry in reversed(netrc_entries(text)):
        if entry.host == host:
            text = text[:entry.start] + text[entry.end:]
    return text


def write_credentials(host: str, email: str, token: str) -> None:
    """Replace ``host``'s entry in ``~/.netrc`` (mode 0600), keeping every other entry."""
    from shipway.files import write_atomically

    path = netrc_file()
    text = _without(path.read_text("utf-8"), host) if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    text += f"machine {host}\n  login {email}\n  password {token}\n"
    write_atomically(path, text, mode=0o600)


def remove_credentials(host: str) -> bool:
    from shipway.files import write_atomically

    path = netrc_file()
    if not path.exists():
        return False
    text = path.read_text("utf-8")
    kept = _without(text, host)
    if kept == text:
        return False
    write_atomically(path, kept, mode=0o600)
    return True


# which app ------------------------------------------------------------------------------------
GIT_URL_APP = re.compile(r"/(?P<app>[a-z][a-z0-9-]{1,29})\.git/?$")


def git_remote_url(remote: str = REMOTE_NAME, cwd: Path | None = None) -> str | None:
    try:
        found = subprocess.run(["git", "config", "--get", f"remote.{remote}.url"], cwd=cwd,
                               capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def app_from_remote(cwd: Path | None = None) -> str | None:
    url = git_remote_url(cwd=cwd)
    if url is None:
        return None
    match = GIT_URL_APP.search(urlsplit(url).path)
    return match["app"] if match else None


def app_name(args: argparse.Namespace) -> str:
    """``-a/--app``, else the app the ``platform`` git remote points at."""
    from shipway.names import check_app_name

    if getattr(args, "app", None):
        return check_app_name(args.app)
    found = app_from_remote()
    if found:
        return found
    raise UsageError(
        "No app specified: use -a APP, or run this inside a git repository whose "
        f"'{REMOTE_NAME}' remote points at the app (shipway git:remote -a APP)."
    )


def in_git_repository(cwd: Path | None = None) -> bool:
    try:
        found = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=cwd, capture_output=True,
                               text=True, check=False)
    except FileNotFoundError:
        return False
    return found.returncode == 0


@dataclass(frozen=True, slots=True)
class ListedRelease:
    """One row of ``shipway releases``: the release, whether it is current, whether its slug
    is gone from the archive (pruned). Not stored; built from the release files or the API."""

    release: Release
    current: bool
    slug_pruned: bool


# the Backend protocol -----------------------------------------------------------------------
class Backend(Protocol):
    """Every operation the CLI performs, done on a data home or through the API."""

    def whoami(self) -> dict[str, Any]: ...
    def apps(self) -> list[AppInfo]: ...
    def app(self, app: str) -> AppInfo: ...
    def create_app(self, name: str | None) -> AppInfo: ...
    def destroy_app(self, app: str) -> None: ...
    def set_maintenance(self, app: str, on: bool) -> AppInfo: ...
    def releases(self, app: str, limit: int | None = None) -> list[Release]: ...
    def listing(self, app: str) -> list[ListedRelease]: ...
    def release(self, app: str, version: int | None = None) -> Release: ...
    def release_output(self, app: str, version: int) -> Iterator[str]: ...
    def rollback(self, app: str, version: int | None, out: Output) -> Release: ...
    def retry(self, app: str, out: Output) -> Release: ...
    def purge_cache(self, app: str) -> int: ...
    def config(self, app: str) -> dict[str, str]: ...
    def set_config(self, app: str, changes: Mapping[str, str | None],
                   out: Output) -> Release: ...
    def formation(self, app: str) -> dict[str, int]: ...
    def commands(self, app: str) -> dict[str, str]: ...
    def scale(self, app: str, counts: Mapping[str, int]) -> dict[str, int]: ...
    def restart(self, app: str, target: str | None = None) -> Release: ...
    def stop(self, app: str, target: str) -> list[str]: ...
    def dynos(self, app: str) -> list[Dyno]: ...
    def run(self, app: str, command: str, env: Mapping[str, str],
            tty: bool) -> tuple[str, Attachment]: ...
    def run_detached(self, app: str, command: str, env: Mapping[str, str]) -> str: ...
    def exec(self, app: str, dyno: str, command: str, tty: bool) -> Attachment: ...
    def logs(self, app: str, tail: int = 100, follow: bool = False,
             source: str | None = None, dyno: str | None = None) -> Iterator[str]: ...
    def slugs(self, app: str | None = None) -> list[SlugUse]: ...
    def slug(self, ref: str, app: str | None = None) -> SlugUse: ...
    def slug_contents(self, ref: str, path: str = "",
                      app: str | None = None) -> list[SlugEntry]: ...
    def slug_file(self, ref: str, path: str, app: str | None = None) -> Iterator[bytes]: ...
    def slug_tarball(self, ref: str, app: str | None = None) -> Iterator[bytes]: ...
    def slug_diff(self, old: str, new: str, app: str | None = None) -> SlugDiff: ...
    def slug_verify(self, ref: str | None = None) -> list[VerifyResult]: ...
    def slug_prune(self, keep: int, dry_run: bool) -> PrunePlan: ...


def _default_docker() -> Any:
    import docker

    return docker.from_env()


class LocalBackend:
    """Operations on the data home itself (admins on the server), as ``user``."""

    def __init__(self, layout: Layout, settings: Settings,
                 docker_factory: DockerFactory = _default_docker, *,
                 user: str = "admin@localhost", owner: str | None = None) -> None:
        self.layout = layout
        self.settings = settings
        self.docker_factory = docker_factory
        self.user = user
        self.owner = owner

    @contextlib.contextmanager
    def _docker(self) -> Iterator[Any]:
        client = self.docker_factory()
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def _info(self, name: str) -> AppInfo:
        from release.store import ReleaseStore
        from shipway.accounts import Accounts

        app = Accounts(self.layout).app(name)
        server = f"http://{self.settings.host}:{self.settings.port}"
        from shipway.maintenance import in_maintenance

        return openapi.app_info(app, self.settings, server, ReleaseStore(self.layout).current(name),
                                in_maintenance(self.layout, name))

    def set_maintenance(self, app: str, on: bool) -> AppInfo:
        from shipway.maintenance import set_maintenance

        set_maintenance(self.layout, self._check(app), on)
        return self._info(app)

    def _check(self, app: str) -> str:
        if not self.layout.app_file(app).exists():
            raise NotFound(f"Couldn't find that app: {app}.")
        return app

    def whoami(self) -> dict[str, Any]:
        return {"email": self.user, "admin": True, "id": self.user}

    def apps(self) -> list[AppInfo]:
        from shipway.accounts import Accounts

        return [self._info(a.name) for a in Accounts(self.layout).apps()]

    def app(self, app: str) -> AppInfo:
        return self._info(app)

    def create_app(self, name: str | None) -> AppInfo:
        from shipway.api import free_app_name
        from shipway.apps import create_app

        if not self.owner:
            raise UsageError("A local app needs an owner: give --owner EMAIL.")
        created = create_app(self.layout, name or free_app_name(self.layout), self.owner)
        return self._info(created.name)

    def destroy_app(self, app: str) -> None:
        from shipway.apps import teardown_app

        teardown_app(self.layout, self.settings, self._check(app),
                     docker_factory=self.docker_factory)

    def releases(self, app: str, limit: int | None = None) -> list[Release]:
        from release.store import ReleaseStore

        found = ReleaseStore(self.layout).list(self._check(app))
        return found[-limit:] if limit else found

    def listing(self, app: str) -> list[ListedRelease]:
        from builder.slug import SlugArchive
        from release.store import ReleaseStore

        store = ReleaseStore(self.layout)
        current = store.current(self._check(app))
        archive = SlugArchive(self.layout)
        return [ListedRelease(r, current is not None and r.version == current.version,
                              bool(r.slug) and not archive.exists(r.slug))
                for r in store.list(app)]

    def release(self, app: str, version: int | None = None) -> Release:
        from release.store import ReleaseStore

        store = ReleaseStore(self.layout)
        if version is not None:
            return store.get(self._check(app), version)
        latest = store.latest(self._check(app))
        if latest is None:
            raise NotFound(f"{app} has no releases.")
        return latest

    def release_output(self, app: str, version: int) -> Iterator[str]:
        release = self.release(app, version)
        if not release.output:
            raise NotFound(f"{release.name} has no output: nothing was built or launched.")
        try:
            with open(release.output, encoding="utf-8", errors="replace") as fh:
                yield from fh
        except FileNotFoundError:
            raise NotFound(f"The output of {release.name} is gone.") from None

    def rollback(self, app: str, version: int | None, out: Output) -> Release:
        from shipway.api import rollback_with_warnings

        with self._docker() as docker:
            return rollback_with_warnings(self.layout, self.settings, app=self._check(app),
                                          version=version, user=self.user, out=out,
                                          docker=docker)

    def purge_cache(self, app: str) -> int:
        from builder.cache import purge_cache

        return purge_cache(self.layout, app)

    def retry(self, app: str, out: Output) -> Release:
        from release.retry import retry

        with self._docker() as docker:
            return retry(self.layout, self.settings, app=self._check(app), user=self.user,
                         out=out, docker=docker)

    def config(self, app: str) -> dict[str, str]:
        from release.config import config_vars

        return config_vars(self.layout, app)

    def set_config(self, app: str, changes: Mapping[str, str | None], out: Output) -> Release:
        from release.config import set_config

        with self._docker() as docker:
            return set_config(self.layout, self.settings, app=self._check(app), changes=changes,
                              user=self.user, out=out, docker=docker)

    def formation(self, app: str) -> dict[str, int]:
        from builder.slug import SlugArchive
        from release.formation import read_formation
        from release.store import ReleaseStore

        current = ReleaseStore(self.layout).current(self._check(app))
        types: dict[str, str] = {}
        if current is not None and current.slug:
            types = SlugArchive(self.layout).get(current.slug).process_types
        return read_formation(self.layout, app).for_types(types)

    def commands(self, app: str) -> dict[str, str]:
        from builder.slug import SlugArchive
        from release.store import ReleaseStore

        current = ReleaseStore(self.layout).current(self._check(app))
        if current is None or not current.slug:
            return {}
        try:
            return dict(SlugArchive(self.layout).get(current.slug).process_types)
        except NotFound:
            return {}

    def scale(self, app: str, counts: Mapping[str, int]) -> dict[str, int]:
        from release.dynos import scale

        with self._docker() as docker:
            scale(self.layout, self.settings, app=self._check(app), counts=counts,
                  docker=docker)
        return self.formation(app)

    def restart(self, app: str, target: str | None = None) -> Release:
        from release.dynos import restart

        with self._docker() as docker:
            return restart(self.layout, self.settings, app=self._check(app), docker=docker,
                           target=target)

    def stop(self, app: str, target: str) -> list[str]:
        from release.dynos import stop

        with self._docker() as docker:
            return stop(self.layout, self.settings, app=self._check(app), target=target,
                        docker=docker)

    def dynos(self, app: str) -> list[Dyno]:
        from release.dynos import ps

        with self._docker() as docker:
            return ps(self.layout, app=self._check(app), docker=docker)

    def run(self, app: str, command: str, env: Mapping[str, str],
            tty: bool) -> tuple[str, Attachment]:
        from release.oneoff import attach

        docker = self.docker_factory()
        try:
            session = attach(self.layout, self.settings, app=self._check(app), command=command,
                             env=env, tty=tty, docker=docker, user=self.user,
                             on_close=docker.close)
        except BaseException:
            docker.close()
            raise
        return session.name, session

    def exec(self, app: str, dyno: str, command: str, tty: bool) -> Attachment:
        from release.oneoff import exec_in

        docker = self.docker_factory()
        try:
            return exec_in(self.layout, self.settings, app=self._check(app), dyno=dyno,
                           command=command, tty=tty, docker=docker, on_close=docker.close)
        except BaseException:
            docker.close()
            raise

    def run_detached(self, app: str, command: str, env: Mapping[str, str]) -> str:
        from release.oneoff import start_detached

        with self._docker() as docker:
            return start_detached(self.layout, self.settings, app=self._check(app),
                                  command=command, env=env, docker=docker, user=self.user)

    def logs(self, app: str, tail: int = 100, follow: bool = False,
             source: str | None = None, dyno: str | None = None) -> Iterator[str]:
        from release.logplex import logs

        with self._docker() as docker:
            yield from logs(self.layout, app=app, docker=docker, tail=tail, follow=follow,
                            source=source, dyno=dyno)

    def slugs(self, app: str | None = None) -> list[SlugUse]:
        return slugtools.slug_uses(self.layout, app=app)

    def slug(self, ref: str, app: str | None = None) -> SlugUse:
        found = slugtools.find_slug(self.layout, ref, app=app)
        return slugtools.slug_use(self.layout, found)

    def slug_contents(self, ref: str, path: str = "",
                      app: str | None = None) -> list[SlugEntry]:
        found = slugtools.find_slug(self.layout, ref, app=app)
        return list(slugtools.contents(self.layout, found, path))

    def slug_file(self, ref: str, path: str, app: str | None = None) -> Iterator[bytes]:
        found = slugtools.find_slug(self.layout, ref, app=app)
        return slugtools.read_file(self.layout, found, path)

    def slug_tarball(self, ref: str, app: str | None = None) -> Iterator[bytes]:
        found = slugtools.find_slug(self.layout, ref, app=app)
        return slugtools.read_tarball(self.layout, found)

    def slug_diff(self, old: str, new: str, app: str | None = None) -> SlugDiff:
        a = slugtools.find_slug(self.layout, old, app=app)
        b = slugtools.find_slug(self.layout, new, app=app)
        return slugtools.diff(self.layout, a, b)

    def slug_verify(self, ref: str | None = None) -> list[VerifyResult]:
        ids = [slugtools.find_slug(self.layout, ref).id] if ref else None
        return slugtools.verify(self.layout, ids)

    def slug_prune(self, keep: int, dry_run: bool) -> PrunePlan:
        return slugtools.prune(self.layout, keep=keep, dry_run=dry_run)


ERRORS: dict[str, type[ShipwayError]] = {
    "not_found": NotFound, "forbidden": AccessDenied, "unauthorized": Unauthorized,
    "conflict": Conflict, "invalid_params": UsageError,
}


class ApiError(ShipwayError):
    """An error the server answered with that has no closer local type."""


class RemoteBackend:
    """Operations through the server's ``/api/`` as ``email`` with ``token``."""

    def __init__(self, server_url: str, email: str, token: str,
                 session: Any | None = None) -> None:
        import requests

        self.server = server_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.auth = (email, token)
        self.session.trust_env = False  # credentials are ours; no proxy for the platform
        self.session.headers["Accept"] = "application/json"

    def _request(self, method: str, path: str, *, body: Any = None, stream: bool = False,
                 params: dict[str, Any] | None = None, timeout: float | None = TIMEOUT,
                 headers: dict[str, str] | None = None) -> Any:
        import requests

        url = f"{self.server}/api{path}"
        try:
            response = self.session.request(method, url, json=body, params=params,
                                            stream=stream, timeout=timeout,
                                            headers=headers or {})
        except requests.RequestException as exc:
            raise ShipwayError(f"Cannot reach {self.server}: {type(exc).__name__}.",
                               hint="Is the server running? Check shipway login --server.") \
                from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._request(method, path, **kw).json()

    def _lines(self, response: Any) -> Iterator[str]:
        with contextlib.closing(response):
            for line in response.iter_lines(chunk_size=1, decode_unicode=False):
                yield line.decode("utf-8", errors="replace")

    def _replay(self, app: str, release: Release, out: Output) -> None:
        if release.output:
            _show(self.release_output(app, release.version), out)

    def whoami(self) -> dict[str, Any]:
        return dict(self._json("GET", "/account"))

    def apps(self) -> list[AppInfo]:
        return [openapi.app_from(d) for d in self._json("GET", "/apps")]

    def app(self, app: str) -> AppInfo:
        return openapi.app_from(self._json("GET", f"/apps/{app}"))

    def create_app(self, name: str | None) -> AppInfo:
        return openapi.app_from(self._json("POST", "/apps", body={"name": name}))

    def destroy_app(self, app: str) -> None:
        self._json("DELETE", f"/apps/{app}")

    def set_maintenance(self, app: str, on: bool) -> AppInfo:
        return openapi.app_from(self._json("PATCH", f"/apps/{app}", body={"maintenance": on}))

    def releases(self, app: str, limit: int | None = None) -> list[Release]:
        params = {"limit": limit} if limit else None
        return [openapi.release_from(d)
                for d in self._json("GET", f"/apps/{app}/releases", params=params)]

    def listing(self, app: str) -> list[ListedRelease]:
        return [ListedRelease(openapi.release_from(d), bool(d.get("current")),
                              bool(d.get("slug_pruned")))
                for d in self._json("GET", f"/apps/{app}/releases")]

    def release(self, app: str, version: int | None = None) -> Release:
        if version is None:
            latest = self.releases(app, limit=1)
            if not latest:
                raise NotFound(f"{app} has no releases.")
            version = latest[-1].version
        doc = self._json("GET", f"/apps/{app}/releases/{version}")
        release = openapi.release_from(doc)
        from dataclasses import replace

        return replace(release, config=dict(doc.get("config_vars", {})))

    def release_output(self, app: str, version: int) -> Iterator[str]:
        response = self._request("GET", f"/apps/{app}/releases/{version}/output", stream=True,
                                 timeout=LONG_TIMEOUT)
        return self._lines(response)

    def rollback(self, app: str, version: int | None, out: Output) -> Release:
        doc = self._json("POST", f"/apps/{app}/releases", body={"release": version},
                         timeout=LONG_TIMEOUT)
        _show(doc.get("output_lines", []), out)
        return openapi.release_from(doc)

    def purge_cache(self, app: str) -> int:
        return int(self._json("DELETE", f"/apps/{app}/build-cache")["freed"])

    def retry(self, app: str, out: Output) -> Release:
        doc = self._json("POST", f"/apps/{app}/releases/retry", body={}, timeout=LONG_TIMEOUT)
        _show(doc.get("output_lines", []), out)
        return openapi.release_from(doc)

    def config(self, app: str) -> dict[str, str]:
        return dict(self._json("GET", f"/apps/{app}/config-vars"))

    def set_config(self, app: str, changes: Mapping[str, str | None], out: Output) -> Release:
        response = self._request("PATCH", f"/apps/{app}/config-vars", body=dict(changes),
                                 timeout=LONG_TIMEOUT)
        version = int(response.headers.get("Shipway-Release", "0"))
        done = self.release(app, version)
        self._replay(app, done, out)
        return done

    def formation(self, app: str) -> dict[str, int]:
        return {f["type"]: int(f["quantity"])
                for f in self._json("GET", f"/apps/{app}/formation")}

    def commands(self, app: str) -> dict[str, str]:
        return {f["type"]: str(f.get("command", ""))
                for f in self._json("GET", f"/apps/{app}/formation")}

    def scale(self, app: str, counts: Mapping[str, int]) -> dict[str, int]:
        updates = [{"type": t, "quantity": q} for t, q in counts.items()]
        found = self._json("PATCH", f"/apps/{app}/formation", body={"updates": updates},
                           timeout=LONG_TIMEOUT)
        return {f["type"]: int(f["quantity"]) for f in found}

    def restart(self, app: str, target: str | None = None) -> Release:
        if target is None:
            return openapi.release_from(self._json("POST", f"/apps/{app}/restart", body={},
                                                   timeout=LONG_TIMEOUT))
        return openapi.release_from(self._json("DELETE", f"/apps/{app}/dynos/{target}",
                                               timeout=LONG_TIMEOUT))

    def stop(self, app: str, target: str) -> list[str]:
        doc = self._json("POST", f"/apps/{app}/dynos/{target}/actions/stop", body={},
                         timeout=LONG_TIMEOUT)
        return [str(name) for name in doc["stopped"]]

    def dynos(self, app: str) -> list[Dyno]:
        return [openapi.dyno_from(d) for d in self._json("GET", f"/apps/{app}/dynos")]

    def _create_dyno(self, app: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._json("POST", f"/apps/{app}/dynos", body=body, timeout=LONG_TIMEOUT))

    def run(self, app: str, command: str, env: Mapping[str, str],
            tty: bool) -> tuple[str, Attachment]:
        from shipway.rendezvous import RemoteAttachment

        doc = self._create_dyno(app, {"command": command, "attach": True, "env": dict(env),
                                      "force_no_tty": not tty})
        return str(doc["name"]), RemoteAttachment(str(doc["attach_url"]))

    def exec(self, app: str, dyno: str, command: str, tty: bool) -> Attachment:
        from shipway.rendezvous import RemoteAttachment

        doc = self._json("POST", f"/apps/{app}/dynos/{dyno}/actions/exec",
                         body={"command": command, "force_no_tty": not tty},
                         timeout=LONG_TIMEOUT)
        return RemoteAttachment(str(doc["attach_url"]))

    def run_detached(self, app: str, command: str, env: Mapping[str, str]) -> str:
        doc = self._create_dyno(app, {"command": command, "attach": False, "env": dict(env)})
        return str(doc["name"])

    def logs(self, app: str, tail: int = 100, follow: bool = False,
             source: str | None = None, dyno: str | None = None) -> Iterator[str]:
        params = {"tail": tail, "follow": "1" if follow else "0", "source": source or "",
                  "dyno": dyno or ""}
        response = self._request("GET", f"/apps/{app}/log", params=params, stream=True,
                                 timeout=None if follow else LONG_TIMEOUT)
        return self._lines(response)

    def slugs(self, app: str | None = None) -> list[SlugUse]:
        params = {"app": app} if app else None
        return [openapi.slug_use_from(d) for d in self._json("GET", "/slugs", params=params)]

    def slug(self, ref: str, app: str | None = None) -> SlugUse:
        params = {"app": app} if app else None
        return openapi.slug_use_from(self._json("GET", f"/slugs/{quote(ref, safe='')}",
                                                params=params))

    def slug_contents(self, ref: str, path: str = "",
                      app: str | None = None) -> list[SlugEntry]:
        params = {k: v for k, v in (("path", path), ("app", app)) if v}
        found = self._json("GET", f"/slugs/{quote(ref, safe='')}/contents", params=params)
        return [openapi.entry_from(e) for e in found]

    def _bytes(self, response: Any) -> Iterator[bytes]:
        with contextlib.closing(response):
            yield from response.iter_content(chunk_size=CHUNK)

    def slug_file(self, ref: str, path: str, app: str | None = None) -> Iterator[bytes]:
        params = {"path": path, **({"app": app} if app else {})}
        return self._bytes(self._request("GET", f"/slugs/{quote(ref, safe='')}/file",
                                         params=params, stream=True))

    def slug_tarball(self, ref: str, app: str | None = None) -> Iterator[bytes]:
        return self._bytes(self._request("GET", f"/slugs/{quote(ref, safe='')}/tarball",
                                         params={"app": app} if app else None, stream=True,
                                         timeout=LONG_TIMEOUT))

    def slug_diff(self, old: str, new: str, app: str | None = None) -> SlugDiff:
        params = {"old": old, "new": new, **({"app": app} if app else {})}
        return openapi.diff_from(self._json("GET", "/slugs/diff", params=params,
                                            timeout=LONG_TIMEOUT))

    def slug_verify(self, ref: str | None = None) -> list[VerifyResult]:
        found = self._json("POST", "/slugs/verify", body={"id": ref}, timeout=LONG_TIMEOUT)
        return [openapi.verify_from(r) for r in found]

    def slug_prune(self, keep: int, dry_run: bool) -> PrunePlan:
        return openapi.prune_from(self._json("POST", "/slugs/prune",
                                             body={"keep": keep, "dry_run": dry_run}))


def _show(lines: Iterable[str], out: Output) -> None:
    """Replay a release's output lines: `` !     `` ones as errors, as the server printed them."""
    for line in lines:
        if line.startswith(" !     "):
            out.error(line.removeprefix(" !     "))
        else:
            out.line(line)


def _error_of(response: Any) -> ShipwayError:
    try:
        doc = response.json()
        api_id, message = str(doc["id"]), str(doc["message"])
    except (ValueError, KeyError, TypeError):
        return ApiError(f"The server answered {response.status_code} "
                        f"{response.reason or ''}".rstrip() + ".")
    kind = ERRORS.get(api_id, ApiError)
    error = kind(message)
    if kind is Unauthorized:
        error.hint = "Run shipway login to use a valid token."
    return error


# which backend --------------------------------------------------------------------------------
def remote_backend(server: str | None = None) -> RemoteBackend:
    url = server or saved_server()
    if not url:
        raise Unauthorized("Not logged in: run shipway login --server URL.")
    found = read_credentials(server_host(url))
    if found is None:
        raise Unauthorized(f"Not logged in to {url}: run shipway login.")
    return RemoteBackend(url, *found)


def backend_for(args: argparse.Namespace, *, owner: str | None = None,
                docker_factory: DockerFactory = _default_docker) -> Backend:
    """Local with ``--home`` or an ``owner``; else remote once ``shipway login`` saved a server
    (even with ``$SHIPWAY_HOME`` set: that variable is for ``serve`` and admin commands); else
    the data home (``$SHIPWAY_HOME`` or ./var)."""
    from shipway.cli import context

    local = owner or getattr(args, "home", None)
    if local or not saved_server():
        ctx = context(args)
        user = os.environ.get("SHIPWAY_USER") or "admin@localhost"
        return LocalBackend(ctx.layout, ctx.settings, docker_factory, user=user, owner=owner)
    return remote_backend()


def json_dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


__all__ = ["Backend", "ListedRelease", "LocalBackend", "RemoteBackend", "backend_for", "Slug", "AppInfo"]
