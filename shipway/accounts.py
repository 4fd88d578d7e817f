"""Users, API tokens and app access, kept in ``users.toml`` and ``apps/NAME/app.toml``.

Only a SHA-256 of each token is stored; tokens are 256-bit random strings, so a plain hash is
enough, and lookups compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from shipway.errors import Conflict, NotFound, Unauthorized
from shipway.files import locked, write_atomically
from shipway.layout import Layout
from shipway.names import check_app_name, check_email

TOKEN_PREFIX = "shp_"


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Token:
    """One API token of a user; ``digest`` is sha256 of the token (held in ``users.toml``)."""

    id: str
    digest: str
    created_at: str


@dataclass(frozen=True, slots=True)
class User:
    """A user as kept in ``users.toml``."""

    email: str
    admin: bool = False
    tokens: tuple[Token, ...] = ()


@dataclass(frozen=True, slots=True)
class App:
    """An app's ownership and build settings, kept in ``apps/NAME/app.toml``."""

    name: str
    owner: str
    created_at: str
    collaborators: tuple[str, ...] = ()
    buildpack: str = ""
    stack: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Accounts:
    """Reads and changes users, tokens and apps under one data home."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    # users and tokens -------------------------------------------------------------------
    def _lock(self) -> Path:
        return self.layout.locks_dir / "users.lock"

    def users(self) -> list[User]:
        path = self.layout.users_file
        if not path.exists():
            return []
        doc = tomllib.loads(path.read_text("utf-8"))
        return [
            User(
                email=u["email"],
                admin=bool(u.get("admin", False)),
                tokens=tuple(Token(**t) for t in u.get("tokens", [])),
            )
            for u in doc.get("users", [])
        ]

    def _save_users(self, users: list[User]) -> None:
        doc = {
            "users": [
                {
                    "email": u.email,
                    "admin": u.admin,
                    "tokens": [
                        {"id": t.id, "digest": t.digest, "created_at": t.created_at}
                        for t in u.tokens
                    ],
                }
                for u in users
            ]
        }
        write_atomically(self.layout.users_file, tomli_w.dumps(doc), mode=0o600)

    def create_token(self, email: str, *, admin: bool = False) -> tuple[User, str]:
        """Create (or extend) a user with a new token; returns the token, shown once."""
        email = check_email(email)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        new = Token(id=secrets.token_hex(4), digest=_digest(token), created_at=now_iso())
        with locked(self._lock()):
            users = self.users()
            for i, user in enumerate(users):
                if user.email == email:
                    users[i] = User(email, user.admin or admin, user.tokens + (new,))
                    break
            else:
                users.append(User(email, admin, (new,)))
            self._save_users(users)
        return next(u for u in users if u.email == email), token

    def revoke_token(self, token_id: str) -> User:
        with locked(self._lock()):
            users = self.users()
            for i, user in enumerate(users):
                kept = tuple(t for t in user.tokens if t.id != token_id)
                if len(kept) != len(user.tokens):
                    users[i] = User(user.email, user.admin, kept)
                    self._save_users(users)
                    return users[i]
        raise NotFound(f"No token with id {token_id!r}.")

    def authenticate(self, token: str) -> User:
        """Return the user holding ``token``; raises Unauthorized."""
        digest = _digest(token)
        found: User | None = None
        for user in self.users():
            for t in user.tokens:
                if hmac.compare_digest(t.digest, digest):
                    found = user
        if found is None:
            raise Unauthorized("Invalid credentials provided.")
        return found

    def user(self, email: str) -> User | None:
        return next((u for u in self.users() if u.email == email.lower()), None)

    # apps -------------------------------------------------------------------------------
    def app(self, name: str) -> App:
        path = self.layout.app_file(check_app_name(name))
        if not path.exists():
            raise NotFound(f"Couldn't find that app: {name}.")
        doc = tomllib.loads(path.read_text("utf-8"))
        return App(
            name=doc["name"],
            owner=doc["owner"],
            created_at=doc["created_at"],
            collaborators=tuple(doc.get("collaborators", [])),
            buildpack=doc.get("buildpack", ""),
            stack=doc.get("stack", ""),
            extra=dict(doc.get("extra", {})),
        )

    def apps(self) -> list[App]:
        if not self.layout.apps_dir.is_dir():
            return []
        names = sorted(p.name for p in self.layout.apps_dir.iterdir() if (p / "app.toml").exists())
        return [self.app(n) for n in names]

    def save_app(self, app: App) -> None:
        doc: dict[str, Any] = {
            "name": app.name,
            "owner": app.owner,
            "created_at": app.created_at,
            "collaborators": list(app.collaborators),
            "buildpack": app.buildpack,
            "stack": app.stack,
        }
        if app.extra:
            doc["extra"] = app.extra
        write_atomically(self.layout.app_file(app.name), tomli_w.dumps(doc))

    def can_access(self, user: User, app: App) -> bool:
        return user.admin or user.email == app.owner or user.email in app.collaborators

    def authorize(self, user: User, name: str) -> App:
        """Return the app if ``user`` may act on it, else NotFound.

        An app the user may not see gets the very answer a missing one gets (the same 404,
        the same line): asking names never tells which exist.
        """
        app = self.app(name)
        if not self.can_access(user, app):
            raise NotFound(f"Couldn't find that app: {name}.")
        return app

    def add_collaborator(self, name: str, email: str) -> App:
        email = check_email(email)
        with locked(self.layout.app_lock(name)):
            app = self.app(name)
            if email == app.owner or email in app.collaborators:
                raise Conflict(f"{email} already has access to {name}.")
            updated = App(
                app.name, app.owner, app.created_at, app.collaborators + (email,),
                app.buildpack, app.stack, app.extra,
            )
            self.save_app(updated)
        return updated

    def remove_collaborator(self, name: str, email: str) -> App:
        email = check_email(email)
        with locked(self.layout.app_lock(name)):
            app = self.app(name)
            if email not in app.collaborators:
                raise NotFound(f"{email} is not a collaborator on {name}.")
            updated = App(
                app.name, app.owner, app.created_at,
                tuple(c for c in app.collaborators if c != email),
                app.buildpack, app.stack, app.extra,
            )
            self.save_app(updated)
        return updated

    def update_app(self, name: str, **changes: Any) -> App:
        with locked(self.layout.app_lock(name)):
            app = self.app(name)
            values: dict[str, Any] = {
                "name": app.name, "owner": app.owner, "created_at": app.created_at,
                "collaborators": app.collaborators, "buildpack": app.buildpack,
                "stack": app.stack, "extra": app.extra,
            }
            values.update(changes)
            updated = App(**values)
            self.save_app(updated)
        return updated
