"""The Platform API under ``/api/``: JSON over HTTP, routed to the same functions as the CLI.

This module only routes, authenticates, parses and renders; every decision is made by
``shipway.apps``, ``release/`` and ``shipway.slugtools``. Errors are ``{"id", "message"}`` with
the status code of the ``ShipwayError`` raised. Routes are listed in ``ROUTES`` and documented
in ``shipway.openapi.OPERATIONS`` (a test checks both agree).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from builder.cache import purge_cache
from builder.slug import SlugArchive
from hooks.endpoint import REALM, StartResponse, WSGIApp, authenticate
from hooks.pipeline import Output
from hooks.sideband import Collector
from release import oneoff
from release.config import config_vars, set_config
from release.dynos import ps, restart, scale, stop
from release.formation import read_formation
from release.logplex import check_dyno, check_source, logs
from release.records import Release
from release.retry import retry
from release.rollback import rollback, rollback_target
from release.store import ReleaseStore
from shipway import openapi, slugtools
from shipway.accounts import Accounts, App, User
from shipway.apps import create_app, teardown_app
from shipway.errors import (
    AccessDenied,
    Conflict,
    NotFound,
    ShipwayError,
    TooManyRequests,
    UsageError,
)
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.maintenance import in_maintenance, set_maintenance
from shipway.names import APP_NAME, check_app_name
from shipway.rendezvous import Rendezvous
from shipway.settings import Settings

MAX_BODY = 1 << 20
OUTPUT_POLL = 0.2
DockerFactory = Callable[[], Any]
STATUS_TEXT = {200: "OK", 201: "Created", 206: "Partial Content", 400: "Bad Request",
               401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
               415: "Unsupported Media Type", 416: "Range Not Satisfiable",
               422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
               507: "Insufficient Storage"}
ADJECTIVES = ("severe", "quiet", "bold", "calm", "eager", "fancy", "gentle", "happy", "jolly",
              "keen", "lively", "mellow", "nimble", "proud", "rapid", "shy", "sunny", "swift",
              "tender", "vast", "witty", "young", "brave", "cosmic", "frozen", "golden")
NOUNS = ("mountain", "river", "forest", "meadow", "harbor", "canyon", "island", "glacier",
         "desert", "valley", "ocean", "prairie", "lagoon", "summit", "tundra", "delta",
         "reef", "ridge", "grove", "cliff", "brook", "dune", "fjord", "mesa")
RANGE = re.compile(r"\s*version\s+(?P<start>\d*)\s*\.\.\s*(?P<end>\d*)\s*(?:;(?P<opts>.*))?")


class PayloadTooLarge(ShipwayError):
    api_id = "payload_too_large"
    http_status = 413


class BadRequest(ShipwayError):
    api_id = "bad_request"
    http_status = 400


class MethodNotAllowed(ShipwayError):
    api_id = "method_not_allowed"
    http_status = 405


def free_app_name(layout: Layout, rng: random.Random | None = None) -> str:
    """A free generated name like Heroku's ``severe-mountain-793``."""
    pick = rng or random.SystemRandom()
    for _ in range(100):
        name = f"{pick.choice(ADJECTIVES)}-{pick.choice(NOUNS)}-{pick.randint(100, 9999)}"
        if not layout.app_file(name).exists():
            return name
    raise Conflict("Could not find a free app name: give one.")


@dataclass
class Request:
    environ: dict[str, Any]
    user: User | None
    params: dict[str, str]
    query: dict[str, str]
    body: Any

    @property
    def server_url(self) -> str:
        scheme = self.environ.get("wsgi.url_scheme", "http")
        host = self.environ.get("HTTP_HOST") or (
            f"{self.environ.get('SERVER_NAME', '127.0.0.1')}:{self.environ.get('SERVER_PORT')}")
        return f"{scheme}://{host}"

    @property
    def who(self) -> User:
        assert self.user is not None
        return self.user


@dataclass
class Response:
    status: int = 200
    body: Any = None
    stream: Iterable[bytes] | None = None
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: str
    pattern: re.Pattern[str]


def _compile(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(regex)


def _route(method: str, path: str, handler: str) -> Route:
    return Route(method, path, handler, _compile(path))


# literal paths come before {slug} paths that would also match them
ROUTES: tuple[Route, ...] = (
    _route("GET", "/api/openapi.json", "document"),
    _route("GET", "/api/account", "account"),
    _route("GET", "/api/apps", "apps_list"),
    _route("POST", "/api/apps", "apps_create"),
    _route("GET", "/api/apps/{app}", "app_info"),
    _route("DELETE", "/api/apps/{app}", "app_destroy"),
    _route("PATCH", "/api/apps/{app}", "app_update"),
    _route("GET", "/api/apps/{app}/releases", "releases_list"),
    _route("POST", "/api/apps/{app}/releases", "releases_rollback"),
    _route("POST", "/api/apps/{app}/releases/retry", "releases_retry"),
    _route("DELETE", "/api/apps/{app}/build-cache", "build_cache_purge"),
    _route("GET", "/api/apps/{app}/releases/{version}", "release_info"),
    _route("GET", "/api/apps/{app}/releases/{version}/output", "release_output"),
    _route("GET", "/api/apps/{app}/config-vars", "config_get"),
    _route("PATCH", "/api/apps/{app}/config-vars", "config_update"),
    _route("GET", "/api/apps/{app}/formation", "formation_get"),
    _route("PATCH", "/api/apps/{app}/formation", "formation_update"),
    _route("GET", "/api/apps/{app}/slugs/{slug}", "app_slug"),
    _route("POST", "/api/apps/{app}/restart", "app_restart"),
    _route("GET", "/api/apps/{app}/dynos", "dynos_list"),
    _route("POST", "/api/apps/{app}/dynos", "dynos_create"),
    _route("DELETE", "/api/apps/{app}/dynos/{dyno}", "dyno_restart"),
    _route("POST", "/api/apps/{app}/dynos/{dyno}/actions/stop", "dyno_stop"),
    _route("POST", "/api/apps/{app}/dynos/{dyno}/actions/exec", "dyno_exec"),
    _route("GET", "/api/apps/{app}/log", "app_log"),
    _route("GET", "/api/apps/{app}/addons", "addons_list"),
    _route("POST", "/api/apps/{app}/addons", "addons_create"),
    _route("GET", "/api/apps/{app}/addons/{addon}", "addon_info"),
    _route("DELETE", "/api/apps/{app}/addons/{addon}", "addon_destroy"),
    *(_route(method, path, handler) for method, path, handler in (
        ("GET", "/api/apps/{app}/pg", "pg_info"),
        ("POST", "/api/apps/{app}/pg/psql", "pg_psql"),
        ("POST", "/api/apps/{app}/pg/reset", "pg_reset"),
        ("GET", "/api/apps/{app}/pg/backups", "pg_backups"),
        ("POST", "/api/apps/{app}/pg/backups", "pg_capture"),
        ("GET", "/api/apps/{app}/pg/backups/{backup}", "pg_backup"),
        ("GET", "/api/apps/{app}/pg/backups/{backup}/download", "pg_download"),
        ("POST", "/api/apps/{app}/pg/backups/{backup}/restore", "pg_restore"),
        ("DELETE", "/api/apps/{app}/pg/backups/{backup}", "pg_delete"),
        ("GET", "/api/apps/{app}/pg/backup-schedules", "pg_schedules"),
        ("PUT", "/api/apps/{app}/pg/backup-schedules", "pg_schedule"),
        ("DELETE", "/api/apps/{app}/pg/backup-schedules", "pg_unschedule"),
    )),
    _route("GET", "/api/apps/{app}/domains", "domains_list"),
    _route("POST", "/api/apps/{app}/domains", "domains_create"),
    _route("DELETE", "/api/apps/{app}/domains/{hostname}", "domain_destroy"),
    _route("GET", "/api/apps/{app}/sni-endpoints", "certs_list"),
    _route("POST", "/api/apps/{app}/sni-endpoints", "certs_create"),
    _route("DELETE", "/api/apps/{app}/sni-endpoints", "certs_destroy"),
    _route("GET", "/api/slugs", "slugs_list"),
    _route("GET", "/api/slugs/diff", "slugs_diff"),
    _route("POST", "/api/slugs/verify", "slugs_verify"),
    _route("POST", "/api/slugs/prune", "slugs_prune"),
    _route("GET", "/api/slugs/{slug}", "slug_info"),
    _route("GET", "/api/slugs/{slug}/contents", "slug_contents"),
    _route("GET", "/api/slugs/{slug}/file", "slug_file"),
    _route("GET", "/api/slugs/{slug}/tarball", "slug_tarball"),
)
OPERATIONS = {(op.method, op.path): op for op in openapi.OPERATIONS}


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _error(exc: ShipwayError) -> Response:
    headers = [("WWW-Authenticate", REALM)] if exc.http_status == 401 else []
    if isinstance(exc, TooManyRequests):
        headers.append(("Retry-After", str(exc.retry_after)))
    return Response(exc.http_status, {"id": exc.api_id, "message": exc.message},
                    headers=headers)


def version_of(text: str) -> int:
    digits = text.lower().removeprefix("v")
    if not digits.isdigit():
        raise UsageError(f"{text!r} is not a release version: use N or vN.")
    return int(digits)


def _int_query(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise UsageError(f"Query parameter {name} must be a whole number, got {value!r}.")
    return int(value)


class Api:
    """The ``/api/`` WSGI app; ``docker_factory`` gives a Docker client for relaunches."""

    def __init__(self, layout: Layout, settings: Settings, *, docker_factory: DockerFactory,
                 max_body: int = MAX_BODY, rendezvous: Rendezvous | None = None) -> None:
        self.layout = layout
        self.rendezvous = rendezvous
        self.settings = settings
        self.docker_factory = docker_factory
        self.max_body = max_body
        self.accounts = Accounts(layout)
        self.store = ReleaseStore(layout)

    # WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "")
        log = get_log(request_id=environ.get("shipway.request_id", ""), method=method,
                      path=path[:200])
        try:
            response = self._dispatch(environ, method, path)
            if response.stream is None:
                response.body = _json_bytes(response.body)  # fails here, not after the log
        except ShipwayError as exc:
            response = _error(exc)
        except Exception:  # noqa: BLE001 - the user gets a JSON 500, the log gets the trace
            log.exception("api.crashed")
            response = Response(500, {"id": "internal_server_error",
                                      "message": "Internal server error."})
        log.info("api.request", status=response.status)
        return self._render(response, start_response)

    def _render(self, response: Response, start_response: StartResponse) -> Iterable[bytes]:
        status = f"{response.status} {STATUS_TEXT.get(response.status, 'OK')}"
        headers = [("Cache-Control", "no-store"), *response.headers]
        if response.stream is not None:
            start_response(status, [("Content-Type", response.content_type), *headers])
            return response.stream
        body = response.body if isinstance(response.body, bytes) else _json_bytes(response.body)
        start_response(status, [("Content-Type", "application/json; charset=utf-8"),
                                ("Content-Length", str(len(body))), *headers])
        return [body]

    def _dispatch(self, environ: dict[str, Any], method: str, path: str) -> Response:
        matched = [(r, m) for r in ROUTES if (m := r.pattern.fullmatch(path))]
        if not matched:
            raise NotFound(f"No such API path: {path[:100]}.")
        chosen = next(((r, m) for r, m in matched if r.method == method), None)
        if chosen is None:
            allowed = ", ".join(sorted({r.method for r, _ in matched}))
            raise MethodNotAllowed(f"{method} is not allowed here: use {allowed}.")
        route, match = chosen
        op = OPERATIONS[(route.method, route.path)]
        user = authenticate(self.accounts, environ, self.settings) if op.auth else None
        params = dict(match.groupdict())
        if "app" in params:
            params["app"] = check_app_name(params["app"])
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        body = self._body(environ, op.request) if op.request else None
        handler: Handler = getattr(self, route.handler)
        return handler(Request(environ, user, params, query, body))

    def _body(self, environ: dict[str, Any], schema_name: str) -> Any:
        length_text = environ.get("CONTENT_LENGTH") or ""
        if length_text and not length_text.isdigit():
            raise BadRequest("Invalid Content-Length.")
        length = int(length_text) if length_text else None
        if length is not None and length > self.max_body:
            raise PayloadTooLarge(f"Request body is over {self.max_body} bytes.")
        stream = environ["wsgi.input"]
        raw = stream.read(length) if length is not None else stream.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise PayloadTooLarge(f"Request body is over {self.max_body} bytes.")
        if not raw.strip():
            value: Any = {}
        else:
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest(f"Request body is not valid JSON: {exc}.") from None
        problems = openapi.check(value, openapi.SCHEMAS[schema_name])
        if problems:
            raise UsageError("Invalid request: " + "; ".join(problems[:5]) + ".")
        return value

    # helpers ---------------------------------------------------------------------------------
    def _app(self, req: Request) -> App:
        return self.accounts.authorize(req.who, req.params["app"])

    def _admin(self, req: Request) -> User:
        if not req.who.admin:
            raise AccessDenied("This needs an admin token.")
        return req.who

    @contextlib.contextmanager
    def _docker(self) -> Iterator[Any]:
        client = self.docker_factory()
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def _release_json(self, release: Release, *, config: bool = False) -> openapi.Json:
        current = self.store.current(release.app)
        present = not release.slug or SlugArchive(self.layout).exists(release.slug)
        doc = openapi.release_json(release, current=current is not None
                                   and current.version == release.version,
                                   slug_present=present)
        if config:
            doc["config_vars"] = dict(release.config)
        return doc

    def _app_json(self, req: Request, app: App) -> openapi.Json:
        info = openapi.app_info(app, self.settings, req.server_url, self.store.current(app.name),
                                in_maintenance(self.layout, app.name))
        return openapi.app_json(info)

    # routes ----------------------------------------------------------------------------------
    def document(self, req: Request) -> Response:
        return Response(body=openapi.document())

    def account(self, req: Request) -> Response:
        return Response(body=openapi.account_json(req.who))

    def apps_list(self, req: Request) -> Response:
        apps = [a for a in self.accounts.apps() if self.accounts.can_access(req.who, a)]
        return Response(body=[self._app_json(req, a) for a in apps])

    def apps_create(self, req: Request) -> Response:
        name = req.body.get("name") or free_app_name(self.layout)
        app = create_app(self.layout, name, req.who.email)
        return Response(201, self._app_json(req, app))

    def app_info(self, req: Request) -> Response:
        return Response(body=self._app_json(req, self._app(req)))

    def app_update(self, req: Request) -> Response:
        app = self._app(req)
        set_maintenance(self.layout, app.name, bool(req.body["maintenance"]))
        return Response(body=self._app_json(req, app))

    def app_destroy(self, req: Request) -> Response:
        app = self._app(req)
        if not req.who.admin and req.who.email != app.owner:
            raise AccessDenied(f"Only the owner of {app.name} can destroy it.")
        doc = self._app_json(req, app)
        teardown_app(self.layout, self.settings, app.name, docker_factory=self.docker_factory)
        return Response(body=doc)

    def releases_list(self, req: Request) -> Response:
        app = self._app(req)
        releases = self.store.list(app.name)
        headers: list[tuple[str, str]] = []
        status = 200
        limit = _int_query(req.query, "limit", 0)
        spec = req.environ.get("HTTP_RANGE", "")
        if spec:
            releases, status, headers = _paged(releases, spec)
        elif limit:
            releases = releases[-limit:]
        return Response(status, [self._release_json(r) for r in releases], headers=headers)

    def releases_rollback(self, req: Request) -> Response:
        app = self._app(req)
        target = req.body["release"]
        # null (Heroku's CLI default) means the release before the current one
        version = target if isinstance(target, int) or target is None else version_of(target)
        out = Collector()
        with self._docker() as docker:
            done = rollback_with_warnings(self.layout, self.settings, app=app.name,
                                          version=version, user=req.who.email, out=out,
                                          docker=docker)
        return Response(201, {**self._release_json(done), "output_lines": out.lines})

    def releases_retry(self, req: Request) -> Response:
        app = self._app(req)
        out = Collector()
        with self._docker() as docker:
            done = retry(self.layout, self.settings, app=app.name, user=req.who.email, out=out,
                         docker=docker)
        return Response(201, {**self._release_json(done), "output_lines": out.lines})

    def build_cache_purge(self, req: Request) -> Response:
        app = self._app(req)
        return Response(body={"freed": purge_cache(self.layout, app.name)})

    def release_info(self, req: Request) -> Response:
        app = self._app(req)
        release = self.store.get(app.name, version_of(req.params["version"]))
        return Response(body=self._release_json(release, config=True))

    def release_output(self, req: Request) -> Response:
        app = self._app(req)
        release = self.store.get(app.name, version_of(req.params["version"]))
        if not release.output:
            raise NotFound(f"{release.name} has no output: nothing was built or launched.")
        path = Path(release.output)
        if not path.exists() and release.status != "pending":
            raise NotFound(f"The output of {release.name} is gone.")
        limit = self.settings.build_timeout + self.settings.launch_boot_timeout + 600
        return Response(stream=_follow_output(self.store, release, path, limit),
                        content_type="text/plain; charset=utf-8")

    def config_get(self, req: Request) -> Response:
        app = self._app(req)
        return Response(body=config_vars(self.layout, app.name))

    def config_update(self, req: Request) -> Response:
        app = self._app(req)
        with self._docker() as docker:
            release = set_config(self.layout, self.settings, app=app.name, changes=req.body,
                                 user=req.who.email, out=Collector(), docker=docker)
        return Response(body=dict(release.config),
                        headers=[("Shipway-Release", str(release.version)),
                                 ("Shipway-Release-Status", release.status)])

    # add-ons: the same service functions as the CLI's local commands
    def addons_list(self, req: Request) -> Response:
        from shipway.addons.store import attached
        from shipway.commands.addons import addon_doc

        app = self._app(req)
        return Response(body=[addon_doc(a) for a in attached(self.layout, app.name)])

    def addons_create(self, req: Request) -> Response:
        from shipway.addons.service import create_addon
        from shipway.commands.addons import addon_doc

        app = self._app(req)
        with self._docker() as docker:
            addon, release = create_addon(
                self.layout, self.settings, app=app.name, spec=req.body["plan"],
                as_name=req.body.get("attachment"), user=req.who.email, out=Collector(),
                docker=docker)
        return Response(201, {"addon": addon_doc(addon), "release": self._release_json(release)})

    def addon_info(self, req: Request) -> Response:
        from shipway.addons.service import addon_info
        from shipway.commands.addons import addon_doc

        app = self._app(req)
        addon, facts = addon_info(self.layout, self.settings, app=app.name,
                                  name=req.params["addon"])
        return Response(body={**addon_doc(addon), "info": facts})

    def addon_destroy(self, req: Request) -> Response:
        from shipway.addons.service import destroy_addon
        from shipway.commands.addons import addon_doc

        app = self._app(req)
        with self._docker() as docker:
            addon, release = destroy_addon(
                self.layout, self.settings, app=app.name, name=req.params["addon"],
                confirm=req.query.get("confirm"), user=req.who.email, out=Collector(),
                docker=docker)
        return Response(body={"addon": addon_doc(addon), "release": self._release_json(release)})

    # pg (issue #16): each handler is a function in shipway/api_pg.py
    def _pg(self, req: Request, name: str) -> Response:
        from shipway import api_pg  # api_pg imports this module for Request and Response

        handler: Callable[[Api, Request], Response] = getattr(api_pg, name)
        return handler(self, req)

    def pg_info(self, req: Request) -> Response:
        return self._pg(req, "pg_info")

    def pg_psql(self, req: Request) -> Response:
        return self._pg(req, "pg_psql")

    def pg_reset(self, req: Request) -> Response:
        return self._pg(req, "pg_reset")

    def pg_backups(self, req: Request) -> Response:
        return self._pg(req, "pg_backups")

    def pg_capture(self, req: Request) -> Response:
        return self._pg(req, "pg_capture")

    def pg_backup(self, req: Request) -> Response:
        return self._pg(req, "pg_backup")

    def pg_download(self, req: Request) -> Response:
        return self._pg(req, "pg_download")

    def pg_restore(self, req: Request) -> Response:
        return self._pg(req, "pg_restore")

    def pg_delete(self, req: Request) -> Response:
        return self._pg(req, "pg_delete")

    def pg_schedules(self, req: Request) -> Response:
        return self._pg(req, "pg_schedules")

    def pg_schedule(self, req: Request) -> Response:
        return self._pg(req, "pg_schedule")

    def pg_unschedule(self, req: Request) -> Response:
        return self._pg(req, "pg_unschedule")
    # custom domains and certificates (shipway/routing.py) -------------------------------------
    def domains_list(self, req: Request) -> Response:
        from shipway.commands.domains import domain_docs
        from shipway.routing import list_domains

        app = self._app(req)
        default, custom = list_domains(self.layout, self.settings, app.name)
        return Response(body=domain_docs(app.name, default, custom))

    def domains_create(self, req: Request) -> Response:
        from shipway.routing import add_domain

        app = self._app(req)
        host = add_domain(self.layout, self.settings, app.name, req.body["hostname"])
        return Response(201, {"hostname": host, "kind": "custom", "app": {"name": app.name}})

    def domain_destroy(self, req: Request) -> Response:
        from shipway.routing import remove_domain

        app = self._app(req)
        host = remove_domain(self.layout, app.name, req.params["hostname"])
        return Response(body={"hostname": host, "kind": "custom", "app": {"name": app.name}})

    def certs_list(self, req: Request) -> Response:
        from shipway.commands.domains import cert_doc
        from shipway.routing import certificate

        found = certificate(self.layout, self._app(req).name)
        return Response(body=[cert_doc(found)] if found else [])

    def certs_create(self, req: Request) -> Response:
        from shipway.commands.domains import cert_doc
        from shipway.routing import add_certificate

        app = self._app(req)
        found = add_certificate(self.layout, app.name, req.body["certificate_chain"].encode(),
                                req.body["private_key"].encode())
        return Response(201, cert_doc(found))

    def certs_destroy(self, req: Request) -> Response:
        from shipway.commands.domains import cert_doc
        from shipway.routing import remove_certificate

        return Response(body=cert_doc(remove_certificate(self.layout, self._app(req).name)))

    def _formation(self, app: str) -> list[openapi.Json]:
        current = self.store.current(app)
        commands: dict[str, str] = {}
        if current is not None and current.slug and SlugArchive(self.layout).exists(current.slug):
            commands = SlugArchive(self.layout).get(current.slug).process_types
        counts = read_formation(self.layout, app).for_types(commands)
        return openapi.formation_json(app, counts, commands)

    def formation_get(self, req: Request) -> Response:
        return Response(body=self._formation(self._app(req).name))

    def formation_update(self, req: Request) -> Response:
        app = self._app(req)
        counts = {u["type"]: u["quantity"] for u in req.body["updates"]}
        if not counts:
            raise UsageError("No process types given: send updates [{type, quantity}].")
        with self._docker() as docker:
            scale(self.layout, self.settings, app=app.name, counts=counts, docker=docker)
        return Response(body=self._formation(app.name))

    def app_slug(self, req: Request) -> Response:
        app = self._app(req)
        slug = slugtools.find_slug(self.layout, req.params["slug"], app=app.name)
        return Response(body=openapi.slug_json(slug))

    def app_restart(self, req: Request) -> Response:
        app = self._app(req)
        with self._docker() as docker:
            release = restart(self.layout, self.settings, app=app.name, docker=docker)
        return Response(body=self._release_json(release))

    def dynos_list(self, req: Request) -> Response:
        app = self._app(req)
        with self._docker() as docker:
            found = ps(self.layout, app=app.name, docker=docker)
        return Response(body=[openapi.dyno_json(d) for d in found])

    def dyno_restart(self, req: Request) -> Response:
        app = self._app(req)
        with self._docker() as docker:
            release = restart(self.layout, self.settings, app=app.name, docker=docker,
                              target=check_dyno(req.params["dyno"]))
        return Response(body=self._release_json(release))

    def dyno_stop(self, req: Request) -> Response:
        app = self._app(req)
        with self._docker() as docker:
            stopped = stop(self.layout, self.settings, app=app.name, docker=docker,
                           target=str(check_dyno(req.params["dyno"])))
        return Response(body={"stopped": stopped})

    def dynos_create(self, req: Request) -> Response:
        app = self._app(req)
        body = req.body
        command, env = str(body["command"]), dict(body.get("env") or {})
        user = req.who.email
        if not body.get("attach"):
            with self._docker() as docker:
                name = oneoff.start_detached(self.layout, self.settings, app=app.name,
                                             command=command, env=env, docker=docker, user=user)
                dyno = oneoff.oneoff_of(oneoff.find(docker, self.layout, app.name, name))
            return Response(201, {**openapi.dyno_json(dyno), "attach_url": None})
        oneoff.current_release(self.layout, app.name)  # no code deployed: say that first
        if self.rendezvous is None:
            raise Conflict("This server cannot attach to dynos.",
                           hint="Use shipway run:detached, or run shipway serve.")
        tty = not body.get("force_no_tty")
        docker = self.docker_factory()
        try:
            container = oneoff.create(self.layout, self.settings, app=app.name, command=command,
                                      env=env, attach=True, tty=tty, docker=docker, user=user)
        except BaseException:
            docker.close()
            raise
        layout, settings = self.layout, self.settings

        def start() -> oneoff.Session:
            return oneoff.Session(layout, settings, container, docker=docker, tty=tty,
                                  on_close=docker.close).start()

        def cancel() -> None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            docker.close()

        url = self._rendezvous(req, start, cancel)
        return Response(201, {**openapi.dyno_json(oneoff.oneoff_of(container)),
                              "attach_url": url})

    def _rendezvous(self, req: Request, start: Callable[[], oneoff.Attachment],
                    cancel: Callable[[], None]) -> str:
        """A one-time attach URL for the user who asked (see shipway/rendezvous.py)."""
        assert self.rendezvous is not None
        secret = secrets.token_urlsafe(32)
        self.rendezvous.expect(secret, start, cancel)
        host = urlsplit(req.server_url).hostname or self.settings.host
        return f"rendezvous://{host}:{self.rendezvous.port}/{secret}"

    def dyno_exec(self, req: Request) -> Response:
        app = self._app(req)
        name = str(check_dyno(req.params["dyno"]))
        with self._docker() as docker:
            container = oneoff.running_dyno(docker, self.layout, app.name, name)
        if self.rendezvous is None:
            raise Conflict("This server cannot attach to dynos.", hint="Run shipway serve.")
        tty = not req.body.get("force_no_tty")
        command = str(req.body.get("command") or "bash")
        layout, settings, factory = self.layout, self.settings, self.docker_factory

        def start() -> oneoff.Attachment:
            docker = factory()
            try:
                return oneoff.ExecSession(layout, settings, container, docker=docker, tty=tty,
                                          command=command, on_close=docker.close).start()
            except BaseException:
                docker.close()
                raise

        url = self._rendezvous(req, start, lambda: None)
        return Response(201, {"dyno": name, "attach_url": url})

    def app_log(self, req: Request) -> Response:
        app = self._app(req)
        tail = _int_query(req.query, "tail", 100)
        follow = req.query.get("follow", "") in ("1", "true", "yes")
        source = check_source(req.query.get("source"))
        dyno = check_dyno(req.query.get("dyno"))
        docker = self.docker_factory()
        lines = logs(self.layout, app=app.name, docker=docker, tail=tail, follow=follow,
                     source=source, dyno=dyno)

        def stream() -> Iterator[bytes]:
            try:
                for line in lines:
                    yield (line + "\n").encode("utf-8")
            finally:
                with contextlib.suppress(Exception):
                    docker.close()

        return Response(stream=stream(), content_type="text/plain; charset=utf-8")

    # admins' slug tools ----------------------------------------------------------------------
    def _slug(self, req: Request) -> Any:
        self._admin(req)
        app = req.query.get("app") or None
        return slugtools.find_slug(self.layout, req.params["slug"],
                                   app=check_app_name(app) if app else None)

    def slugs_list(self, req: Request) -> Response:
        self._admin(req)
        app = req.query.get("app") or None
        uses = slugtools.slug_uses(self.layout, app=check_app_name(app) if app else None)
        return Response(body=[openapi.slug_json(u.slug, u) for u in uses])

    def slug_info(self, req: Request) -> Response:
        slug = self._slug(req)
        return Response(body=openapi.slug_json(slug, slugtools.slug_use(self.layout, slug)))

    def slug_contents(self, req: Request) -> Response:
        slug = self._slug(req)
        found = slugtools.contents(self.layout, slug, req.query.get("path", ""))
        return Response(body=[openapi.entry_json(e) for e in found])

    def slug_file(self, req: Request) -> Response:
        slug = self._slug(req)
        chunks = slugtools.read_file(self.layout, slug, req.query.get("path", ""))
        first = next(chunks, b"")  # raises NotFound now, while a JSON error can still be sent
        return Response(stream=_prepend(first, chunks), content_type="application/octet-stream")

    def slug_tarball(self, req: Request) -> Response:
        slug = self._slug(req)
        return Response(stream=slugtools.read_tarball(self.layout, slug),
                        content_type="application/gzip",
                        headers=[("Content-Length", str(slug.size))])

    def slugs_diff(self, req: Request) -> Response:
        self._admin(req)
        app_name = req.query.get("app") or None
        app = check_app_name(app_name) if app_name else None
        old_ref, new_ref = req.query.get("old", ""), req.query.get("new", "")
        if not old_ref or not new_ref:
            raise UsageError("Give both ?old= and ?new= (slug ids or vN with ?app=).")
        old = slugtools.find_slug(self.layout, old_ref, app=app)
        new = slugtools.find_slug(self.layout, new_ref, app=app)
        return Response(body=openapi.diff_json(slugtools.diff(self.layout, old, new)))

    def slugs_verify(self, req: Request) -> Response:
        self._admin(req)
        ref = req.body.get("id")
        ids = [slugtools.find_slug(self.layout, ref).id] if ref else None
        results = slugtools.verify(self.layout, ids)
        return Response(body=[openapi.verify_json(r) for r in results])

    def slugs_prune(self, req: Request) -> Response:
        self._admin(req)
        keep = req.body.get("keep", slugtools.DEFAULT_KEEP)
        plan = slugtools.prune(self.layout, keep=keep, dry_run=req.body.get("dry_run", True))
        return Response(body=openapi.prune_json(plan))


def rollback_with_warnings(layout: Layout, settings: Settings, *, app: str, version: int | None,
                           user: str, out: Output, docker: Any) -> Release:
    """``rollback`` plus a line for each add-on attached after the target (it stays)."""
    from shipway.addons.service import rollback_warnings

    # resolved here too, to say which add-ons stay attached; rollback() checks it again
    target = rollback_target(ReleaseStore(layout), layout, app, version)
    done = rollback(layout, settings, app=app, version=target.version, user=user, out=out,
                    docker=docker)
    if done.status == "succeeded":
        for line in rollback_warnings(layout, app, target):
            out.line(line)
    return done


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _paged(releases: list[Release], spec: str) -> tuple[list[Release], int,
                                                         list[tuple[str, str]]]:
    """Heroku's ``Range: version START..END; max=N, order=desc`` over releases."""
    match = RANGE.fullmatch(spec)
    if match is None:
        raise UsageError(f"Invalid Range {spec[:80]!r}: use 'version 1..; max=10'.")
    start = int(match["start"]) if match["start"] else 0
    end = int(match["end"]) if match["end"] else None
    options = dict(
        part.strip().partition("=")[::2] for part in (match["opts"] or "").split(",")
        if part.strip()
    )
    size = options.get("max", "200")
    if not size.isdigit() or not 1 <= int(size) <= 1000:
        raise UsageError("Range max must be between 1 and 1000.")
    descending = options.get("order", "asc") == "desc"
    chosen = [r for r in releases if r.version >= start and (end is None or r.version <= end)]
    if descending:
        chosen.reverse()
    page, more = chosen[:int(size)], chosen[int(size):]
    headers: list[tuple[str, str]] = []
    if page:
        headers.append(("Content-Range", f"version {page[0].version}..{page[-1].version}"))
    if more:
        headers.append(("Next-Range", f"version {more[0].version}..; max={size}"
                        + (", order=desc" if descending else "")))
    return page, 206 if more else 200, headers


def _follow_output(store: ReleaseStore, release: Release, path: Path,
                   limit: float) -> Iterator[bytes]:
    """The log file as it grows, until the release is no longer pending."""
    offset = 0
    deadline = time.monotonic() + limit
    while True:
        status = store.get(release.app, release.version).status
        with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
            fh.seek(offset)
            while chunk := fh.read(slugtools.READ_CHUNK):
                offset += len(chunk)
                yield chunk
        # the status was read before the file: lines written before it finished are sent
        if status != "pending" or time.monotonic() > deadline:
            return
        time.sleep(OUTPUT_POLL)


def make_api(layout: Layout, settings: Settings, *, docker_factory: DockerFactory,
             rendezvous: Rendezvous | None = None) -> WSGIApp:
    """The WSGI app the git endpoint forwards ``/api/`` to."""
    return Api(layout, settings, docker_factory=docker_factory, rendezvous=rendezvous)


__all__ = ["APP_NAME", "Api", "make_api", "free_app_name", "ROUTES"]
