"""Counts visits in a PostgreSQL table named by DATABASE_URL (the postgresql add-on sets it)."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg


def count_visit(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY, "
                     "at timestamptz NOT NULL DEFAULT now())")
        conn.execute("INSERT INTO visits DEFAULT VALUES")
        row = conn.execute("SELECT count(*) FROM visits").fetchone()
        return int(row[0]) if row else 0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = os.environ.get("DATABASE_URL")
        release = os.environ.get("SHIPWAY_RELEASE", "unknown")
        if not url:
            status, text = 200, f"no database attached (release {release})\n"
        else:
            try:
                status, text = 200, f"visits: {count_visit(url)} (release {release})\n"
            except psycopg.Error as exc:
                status, text = 503, f"database error: {exc}\n"
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
