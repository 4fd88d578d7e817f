"""The ``postgresql`` add-on: a role and a database on a PostgreSQL server Shipway administers.

The operator names the server with ``postgresql_url`` in ``shipway.toml`` or
``SHIPWAY_POSTGRESQL_URL``, e.g. ``postgresql://postgres:SECRET@/postgres?host=/run/postgresql``.
A server reached through a unix socket folder (the usual case for one on the same host) is
mounted into the app's dynos at ``/run/shipway/postgresql``, so ``DATABASE_URL`` works without
any network route from the containers to the host; a TCP host is passed through as is.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import psycopg
from psycopg import sql

from shipway.addons.records import AddonError, Provisioned
from shipway.settings import Settings

CONTAINER_SOCKET_DIR = "/run/shipway/postgresql"
CONNECT_TIMEOUT = 5


class PostgreSQLProvider:
    name = "postgresql"

    def __init__(self, settings: Settings, admin_url: str | None = None) -> None:
        self.admin_url = (admin_url or settings.postgresql_url
                          or os.environ.get("SHIPWAY_POSTGRESQL_URL", ""))

    def _connect(self) -> Any:
        if not self.admin_url:
            raise AddonError(
                "No PostgreSQL server is configured: set postgresql_url in shipway.toml "
                "or SHIPWAY_POSTGRESQL_URL."
            )
        try:
            return psycopg.connect(self.admin_url, autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise AddonError(f"Could not reach the PostgreSQL server: {_one_line(exc)}") from exc

    def _server(self) -> tuple[str, str, dict[str, str]]:
        """(host part of the app's URL, query string, mounts) for the configured server."""
        parts = urlsplit(self.admin_url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        socket_dir = query.get("host", "")
        port = parts.port or int(query.get("port", "5432"))
        if socket_dir.startswith("/") or not parts.hostname:
            socket_dir = socket_dir or "/var/run/postgresql"
            return "", urlencode({"host": CONTAINER_SOCKET_DIR, "port": port}, safe="/"), {
                socket_dir: CONTAINER_SOCKET_DIR}
        return f"{parts.hostname}:{port}", "", {}

    def provision(self, app: str, plan: str, options: dict[str, str]) -> Provisioned:
        ident = f"{re.sub(r'[^a-z0-9]', '_', app)}_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(24)
        with self._connect() as conn:
            role_made = False
            try:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ident), sql.Literal(password)))
                role_made = True
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(ident), sql.Identifier(ident)))
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(ident)))
            except psycopg.Error as exc:
                if role_made:
                    _drop(conn, ident)
                raise AddonError(f"Could not provision PostgreSQL: {_one_line(exc)}") from exc
        host, query, mounts = self._server()
        url = f"postgresql://{ident}:{quote(password, safe='')}@{host}/{ident}"
        if query:
            url += f"?{query}"
        return Provisioned(resource={"role": ident, "database": ident},
                           config={"URL": url}, mounts=mounts)

    def deprovision(self, resource: dict[str, str]) -> None:
        with self._connect() as conn:
            try:
                _drop(conn, resource["database"], role=resource["role"])
            except psycopg.Error as exc:
                raise AddonError(f"Could not deprovision PostgreSQL: {_one_line(exc)}") from exc

    def reset(self, resource: dict[str, str]) -> None:
        """``pg:reset``: the database dropped (its sessions ended) and made again, empty."""
        database, role = resource["database"], resource["role"]
        with self._connect() as conn:
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database)))
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(role)))
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(database)))
            except psycopg.Error as exc:
                raise AddonError(f"Could not reset the database: {_one_line(exc)}") from exc

    def info(self, resource: dict[str, str]) -> dict[str, str]:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT pg_size_pretty(pg_database_size(%s)), "
                "(SELECT count(*) FROM pg_stat_activity WHERE datname = %s), version()",
                (resource["database"], resource["database"]),
            ).fetchone()
        size, connections, version = row if row else ("?", 0, "?")
        return {"Database": resource["database"], "Data Size": str(size),
                "Connections": str(connections), "Version": str(version).split(",")[0]}


def _drop(conn: Any, database: str, *, role: str | None = None) -> None:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                 (database,))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(database)))
    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role or database)))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
