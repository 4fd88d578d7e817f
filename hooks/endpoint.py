"""The smart-HTTP git endpoint as a WSGI app: routing, auth, and one handler per git service.

``/NAME.git/info/refs``, ``/NAME.git/git-upload-pack``, ``/NAME.git/git-receive-pack``; any
other path under ``/api/`` goes to the API app. Names are validated before any path is built.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from dulwich.errors import GitProtocolError, HangupException
from dulwich.protocol import ReceivableProtocol
from dulwich.repo import Repo
from dulwich.server import Backend, UploadPackHandler

from hooks.body import BodyTooLarge, LimitedReader
from hooks.pipeline import Stage
from hooks.receive import PushProtocolError, ReceiveContext, ShipwayReceivePackHandler
from shipway.accounts import Accounts, User
from shipway.errors import AccessDenied, NotFound, ShipwayError, TooManyRequests, Unauthorized
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.names import APP_NAME
from shipway.settings import Settings
from shipway.throttle import keys_for, throttle_for

GIT_PATH = re.compile(
    r"/(?P<app>[a-z][a-z0-9-]{1,29})\.git/(?P<what>info/refs|git-upload-pack|git-receive-pack)"
)
SERVICES = ("git-upload-pack", "git-receive-pack")
REALM = 'Basic realm="Shipway", charset="UTF-8"'

StartResponse = Callable[..., Callable[[bytes], Any]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def credentials(environ: dict[str, Any]) -> tuple[str, str] | None:
    """The (user, token) of an ``Authorization`` header: Basic or Bearer."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return "", value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None
    return None


WRONG_CREDENTIALS = "Invalid credentials provided."


def _claimed_user(environ: dict[str, Any]) -> str:
    """The user name a Basic header claims, for throttling only (never trusted)."""
    creds = credentials(environ)
    return creds[0] if creds else ""


def authenticate(accounts: Accounts, environ: dict[str, Any],
                 settings: Settings | None = None) -> User:
    """The user whose token the request carries; raises Unauthorized or TooManyRequests.

    Every wrong credential gets the same answer; too many from one address, or naming one
    user, get 429 before the token is looked at. The token never reaches a log.
    """
    limits = settings or Settings()
    table = throttle_for(accounts.layout.home, limits.auth_max_failures,
                         limits.auth_failure_window)
    address = str(environ.get("REMOTE_ADDR", ""))
    claimed = _claimed_user(environ)
    keys = keys_for(address, claimed)
    wait = table.retry_after(keys)
    if wait:
        get_log(request_id=environ.get("shipway.request_id", "")).warning(
            "auth.throttled", client=address, user=claimed[:100], retry_after=wait)
        raise TooManyRequests(f"Too many failed logins: try again in {wait} seconds.", wait)
    creds = credentials(environ)
    if creds is None or not creds[1]:
        if "HTTP_AUTHORIZATION" not in environ:
            raise Unauthorized("Authentication required: use your email and API token.")
        creds = ("", "")
    try:
        return accounts.authenticate(creds[1]) if creds[1] else _wrong()
    except Unauthorized:
        table.failed(keys)
        get_log(request_id=environ.get("shipway.request_id", "")).warning(
            "auth.failed", client=address, user=claimed[:100])
        raise Unauthorized(WRONG_CREDENTIALS) from None


def _wrong() -> User:
    raise Unauthorized(WRONG_CREDENTIALS)


class _RepoBackend(Backend):
    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def open_repository(self, path: str) -> Repo:
        return self.repo


def _collect(chunks: list[bytes]) -> Callable[[bytes], int]:
    def write(data: bytes) -> int:
        chunks.append(data)
        return len(data)

    return write


def _plain(start_response: StartResponse, status: str, text: str,
           headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = (text.rstrip("\n") + "\n").encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *(headers or [])])
    return [body]


class GitEndpoint:
    """WSGI app for git smart HTTP; ``stage`` is the deploy pipeline run by receive-pack."""

    def __init__(self, layout: Layout, settings: Settings, stage: Stage,
                 api: WSGIApp | None = None) -> None:
        self.layout = layout
        self.settings = settings
        self.stage = stage
        self.api = api
        self.accounts = Accounts(layout)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request_id = environ.get("HTTP_X_REQUEST_ID", "")[:64] or uuid.uuid4().hex[:16]
        environ["shipway.request_id"] = request_id
        path = environ.get("PATH_INFO", "")
        raw = environ.get("REQUEST_URI", path)
        if path.startswith("/api/") or path == "/api":
            if self.api is None:
                return _plain(start_response, "404 Not Found", "No API here.")
            return self.api(environ, start_response)
        log = get_log(request_id=request_id, path=path[:200])
        match = GIT_PATH.fullmatch(path)
        if match is None or "%" in raw.split("?")[0] or ".." in raw:
            log.info("git.bad_path")
            return _plain(start_response, "404 Not Found", "Not a Shipway git repository URL.")
        app, what = match["app"], match["what"]
        assert APP_NAME.fullmatch(app)
        log = log.bind(app=app)
        try:
            user = authenticate(self.accounts, environ, self.settings)
            log = log.bind(user=user.email)
            self.accounts.authorize(user, app)
        except TooManyRequests as exc:
            return _plain(start_response, "429 Too Many Requests", exc.message,
                          [("Retry-After", str(exc.retry_after))])
        except Unauthorized as exc:
            log.info("git.unauthorized")
            return _plain(start_response, "401 Unauthorized", exc.message,
                          [("WWW-Authenticate", REALM)])
        except NotFound as exc:
            log.info("git.unknown_app")
            return _plain(start_response, "404 Not Found", exc.message)
        except AccessDenied as exc:
            log.info("git.forbidden")
            return _plain(start_response, "403 Forbidden", exc.message)
        method = environ.get("REQUEST_METHOD", "GET")
        if what == "info/refs":
            service = parse_qs(environ.get("QUERY_STRING", "")).get("service", [""])[0]
            if method != "GET" or service not in SERVICES:
                return _plain(start_response, "403 Forbidden",
                              "Only the smart HTTP protocol is supported (git >= 1.6.6).")
            return self._advertise(environ, start_response, app, user, service, request_id)
        if method != "POST":
            return _plain(start_response, "405 Method Not Allowed", "Use POST.")
        if environ.get("CONTENT_TYPE") != f"application/x-{what}-request":
            return _plain(start_response, "415 Unsupported Media Type", "Invalid Content-Type.")
        return self._service(environ, start_response, app, user, what, request_id, log)

    def _handler(self, service: str, repo: Repo, app: str, user: User, request_id: str,
                 proto: ReceivableProtocol, advertise: bool) -> Any:
        backend = _RepoBackend(repo)
        if service == "git-upload-pack":
            return UploadPackHandler(backend, ["/"], proto, stateless_rpc=True,
                                     advertise_refs=advertise)
        context = ReceiveContext(
            app=app, user=user.email, request_id=request_id, stage=self.stage,
            max_input_size=self.settings.receive_max_input_size,
            max_ref_updates=self.settings.receive_max_ref_updates,
        )
        return ShipwayReceivePackHandler(backend, ["/"], proto, context=context,
                                         stateless_rpc=True, advertise_refs=advertise)

    def _advertise(self, environ: dict[str, Any], start_response: StartResponse, app: str,
                   user: User, service: str, request_id: str) -> Iterator[bytes]:
        repo = Repo(str(self.layout.repo_path(app)))
        chunks: list[bytes] = []
        proto = ReceivableProtocol(lambda n: b"", _collect(chunks))
        try:
            proto.write_pkt_line(f"# service={service}\n".encode())
            proto.write_pkt_line(None)
            self._handler(service, repo, app, user, request_id, proto, True).handle()
        finally:
            repo.close()
        start_response("200 OK", [
            ("Content-Type", f"application/x-{service}-advertisement"),
            ("Cache-Control", "no-cache, max-age=0, must-revalidate"),
        ])
        yield b"".join(chunks)

    def _service(self, environ: dict[str, Any], start_response: StartResponse, app: str,
                 user: User, service: str, request_id: str, log: Any) -> Iterable[bytes]:
        encoding = environ.get("HTTP_CONTENT_ENCODING", "").lower()
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            return _plain(start_response, "415 Unsupported Media Type",
                          f"Unsupported Content-Encoding {encoding}.")
        # the pack cap plus room for the ref-update lines
        limit = self.settings.receive_max_input_size + 16 * 1024 * 1024
        body = LimitedReader(environ["wsgi.input"], limit=limit,
                             gzipped=encoding in ("gzip", "x-gzip"))
        started: list[Callable[[bytes], Any]] = []

        def write(data: bytes) -> int:
            if not started:
                started.append(start_response("200 OK", [
                    ("Content-Type", f"application/x-{service}-result"),
                    ("Cache-Control", "no-cache, max-age=0, must-revalidate"),
                ]))
            started[0](data)
            return len(data)

        proto = ReceivableProtocol(body.read, write)
        proto.recv = body.recv  # type: ignore[method-assign]
        repo = Repo(str(self.layout.repo_path(app)))
        try:
            self._handler(service, repo, app, user, request_id, proto, False).handle()
        except (PushProtocolError, GitProtocolError, BodyTooLarge) as exc:
            log.warning("git.bad_request", service=service, error=str(exc)[:200])
            if not started:
                return _plain(start_response, "400 Bad Request", f"Bad request: {exc}")
        except (HangupException, ConnectionError, OSError) as exc:
            log.warning("git.client_gone", service=service, error=str(exc)[:200])
            if not started:
                return _plain(start_response, "400 Bad Request", "Incomplete request.")
        except ShipwayError as exc:
            log.warning("git.error", service=service, error=exc.message)
            if not started:
                return _plain(start_response, "400 Bad Request", exc.message)
        finally:
            repo.close()
        if not started:
            write(b"")
        return []
