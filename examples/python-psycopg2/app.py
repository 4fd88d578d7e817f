"""Answers with the psycopg2 it imports: built from source against the stack's libpq."""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

import psycopg2
import psycopg2.extensions


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (f"psycopg2 {psycopg2.__version__.split()[0]} "
                f"libpq {psycopg2.extensions.libpq_version()}\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
