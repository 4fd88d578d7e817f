"""A standard-library-only app: says GREETING and the release it runs as."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        greeting = os.environ.get("GREETING", "Hello")
        release = os.environ.get("SHIPWAY_RELEASE", "unknown")
        body = f"python-plain example: {greeting} (release {release})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "5000"))), Handler).serve_forever()
