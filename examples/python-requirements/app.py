"""A tiny app with one dependency from PyPI: answers on $PORT."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import six


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"python-requirements example: six {six.__version__}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "5000"))), Handler).serve_forever()
