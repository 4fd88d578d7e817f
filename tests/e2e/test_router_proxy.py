"""The router (Shipway's nginx) against real backends on 127.0.0.1: what a browser or curl sees."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from release.routes import Route, write_route
from shipway import nginx
from shipway.apps import create_app
from shipway.cli import main
from shipway.layout import Layout
from shipway.router import Router
from shipway.settings import Settings


def backend(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.server.peers.add(self.client_address)  # type: ignore[attr-defined]
            if self.path == "/headers":
                wanted = ("Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port",
                          "X-Request-Id", "X-Request-Start")
                self._answer("\n".join(f"{h}: {self.headers.get(h)}" for h in wanted).encode())
                return
            self._answer(f"{name} {self.path} {self.headers.get('X-Forwarded-For')}".encode())

        def do_POST(self) -> None:  # noqa: N802
            digest = hashlib.sha256()
            if self.headers.get("Transfer-Encoding") == "chunked":
                while size := int(self.rfile.readline().strip(), 16):
                    digest.update(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
            else:
                digest.update(self.rfile.read(int(self.headers["Content-Length"])))
            self._answer(f"{name} {digest.hexdigest()}".encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.peers = set()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def address(server: socketserver.BaseServer) -> str:
    host, port = server.server_address[:2]
    return f"{host}:{port}"


@pytest.fixture
def router(layout: Layout) -> Iterator[Router]:
    create_app(layout, "shop", "dev@example.com")
    running = Router(layout, Settings(router_port=0)).start()
    yield running
    running.stop()


def get(router: Router, path: str = "/", host: str = "shop.localhost") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=10)
    conn.request("GET", path, headers={"Host": f"{host}:{router.port}"})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body


def test_unknown_app_is_404_with_a_plain_message(router: Router) -> None:
    status, body = get(router, host="nosuchapp.localhost")
    assert status == 404
    assert "No such app" in body
    status, _ = get(router, host="example.com")
    assert status == 404


def test_app_without_web_dynos_is_503_with_a_page_naming_it(router: Router,
                                                             layout: Layout) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=10)
    conn.request("GET", "/", headers={"Host": "shop.localhost"})
    response = conn.getresponse()
    page = response.read().decode()
    assert (response.status, response.getheader("Content-Type")) == (503, "text/html")
    assert "<strong>shop</strong> has no web process running" in page
    write_route(layout, Route("shop", 2, ()))
    assert get(router)[0] == 503


def test_keep_alive_connection_round_robins_and_follows_a_switch(
    router: Router, layout: Layout
) -> None:
    one, two, three = backend("one"), backend("two"), backend("three")
    write_route(layout, Route("shop", 2, (address(one), address(two))))
    browser = requests.Session()  # reuses its connection, reconnects when nginx closed it
    url = f"http://127.0.0.1:{router.port}/hello"
    seen = [browser.get(url, headers={"Host": "shop.localhost"}).text.split()[0]
            for _ in range(4)]
    assert sorted(seen) == ["one", "one", "two", "two"]
    write_route(layout, Route("shop", 3, (address(three),)))
    assert browser.get(url, headers={"Host": "shop.localhost"}).text == "three /hello 127.0.0.1"
    browser.close()
    for server in (one, two, three):
        server.shutdown()


def test_upstream_connections_are_kept_alive_and_reused(router: Router, layout: Layout) -> None:
    app = backend("kept")
    write_route(layout, Route("shop", 2, (address(app),)))
    for _ in range(30):
        assert get(router)[0] == 200
    # one connection per nginx worker at most, not one per request
    assert 1 <= len(app.peers) <= 4, app.peers  # type: ignore[attr-defined]
    app.shutdown()


def test_forwarded_headers_and_request_id_reach_the_app(router: Router, layout: Layout) -> None:
    app = backend("headers")
    write_route(layout, Route("shop", 2, (address(app),)))
    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=10)
    conn.request("GET", "/headers", headers={"Host": f"shop.localhost:{router.port}",
                                             "X-Forwarded-For": "203.0.113.9"})
    seen = dict(line.split(": ", 1) for line in conn.getresponse().read().decode().splitlines())
    assert seen["Host"] == f"shop.localhost:{router.port}"
    assert seen["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert (seen["X-Forwarded-Proto"], seen["X-Forwarded-Port"]) == ("http", str(router.port))
    assert len(seen["X-Request-Id"]) == 32 and seen["X-Request-Start"].isdigit()
    conn.request("GET", "/headers", headers={"Host": "shop.localhost",
                                             "X-Request-Id": "client-chose-this-id-42"})
    assert "X-Request-Id: client-chose-this-id-42" in conn.getresponse().read().decode()
    conn.close()
    app.shutdown()


def test_a_dead_backend_is_skipped_for_a_request_without_body(
    router: Router, layout: Layout
) -> None:
    alive = backend("alive")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    write_route(layout, Route("shop", 2, (dead, address(alive))))
    for _ in range(3):
        assert get(router)[1].startswith("alive")
    alive.shutdown()


def test_request_bodies_stream_through_with_length_and_chunked(
    router: Router, layout: Layout
) -> None:
    app = backend("echo")
    write_route(layout, Route("shop", 2, (address(app),)))
    payload = bytes(range(256)) * 40_000  # 10 MB
    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=30)
    conn.request("POST", "/upload", body=payload, headers={"Host": "shop.localhost"})
    assert conn.getresponse().read().decode() == f"echo {hashlib.sha256(payload).hexdigest()}"

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(payload), 1 << 20):
            yield payload[start:start + (1 << 20)]

    conn.request("POST", "/upload", body=pieces(), encode_chunked=True,
                 headers={"Host": "shop.localhost", "Transfer-Encoding": "chunked"})
    assert conn.getresponse().read().decode() == f"echo {hashlib.sha256(payload).hexdigest()}"
    conn.close()
    app.shutdown()


def test_upgrade_is_spliced_after_101(router: Router, layout: Layout) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            assert b"Upgrade: websocket" in request
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\n\r\n")
            while data := conn.recv(4096):
                conn.sendall(data.upper())

    threading.Thread(target=serve_one, daemon=True).start()
    write_route(layout, Route("shop", 2, (f"127.0.0.1:{listener.getsockname()[1]}",)))
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as client:
        client.sendall(b"GET /ws HTTP/1.1\r\nHost: shop.localhost\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 101")
        client.sendall(b"hello frames")
        assert client.recv(4096) == b"HELLO FRAMES"
    listener.close()


def test_malformed_request_is_400(router: Router) -> None:
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: shop.localhost\r\nContent-Length: 5\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 400")


def test_responses_stream_as_the_app_writes_them(router: Router, layout: Layout) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    second_part = threading.Event()

    def serve_one() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"6\r\nfirst\n\r\n")
            second_part.wait(10)  # only once the client has read the first part through us
            conn.sendall(b"7\r\nsecond\n\r\n0\r\n\r\n")

    threading.Thread(target=serve_one, daemon=True).start()
    write_route(layout, Route("shop", 2, (f"127.0.0.1:{listener.getsockname()[1]}",)))
    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=5)
    conn.request("GET", "/events", headers={"Host": "shop.localhost"})
    response = conn.getresponse()
    assert response.readline() == b"first\n"
    second_part.set()
    assert response.read() == b"second\n"
    conn.close()
    listener.close()


def test_an_early_answer_to_an_upload_reaches_the_client(router: Router, layout: Layout) -> None:
    """The app refuses a 50 MB upload after its headers; the client hears it while sending."""
    listener = socket.create_server(("127.0.0.1", 0))
    answered = threading.Event()

    def refuse_upload() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large")
            answered.wait(10)  # reads nothing more until the client saw the answer
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(1 << 20):
                pass

    threading.Thread(target=refuse_upload, daemon=True).start()
    write_route(layout, Route("shop", 2, (f"127.0.0.1:{listener.getsockname()[1]}",)))
    size = 50 * 1024 * 1024
    client = socket.create_connection(("127.0.0.1", router.port), timeout=10)
    client.sendall(b"POST /upload HTTP/1.1\r\nHost: shop.localhost\r\n"
                   + f"Content-Length: {size}\r\n\r\n".encode())

    def send_body() -> None:
        with contextlib.suppress(OSError):
            for _ in range(size // (1 << 20)):
                client.sendall(b"x" * (1 << 20))

    threading.Thread(target=send_body, daemon=True).start()
    answer = b""
    while b"too large" not in answer:
        chunk = client.recv(4096)
        assert chunk, answer
        answer += chunk
    answered.set()
    assert answer.startswith(b"HTTP/1.1 413 Payload Too Large")
    client.close()
    listener.close()


def test_a_body_over_the_limit_is_413_with_a_plain_message(layout: Layout) -> None:
    create_app(layout, "shop", "dev@example.com")
    router = Router(layout, Settings(router_port=0, router_max_body_size=1_000_000)).start()
    app = backend("echo")
    try:
        write_route(layout, Route("shop", 2, (address(app),)))
        conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=30)
        conn.request("POST", "/upload", body=b"x" * 2_000_000, headers={"Host": "shop.localhost"})
        response = conn.getresponse()
        assert (response.status, response.getheader("Content-Type")) == (413, "text/plain")
        assert response.read() == b"Request body too large: shop accepts at most 1 MB.\n"
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=30)
        conn.request("POST", "/upload", body=b"x" * 900_000, headers={"Host": "shop.localhost"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        router.stop()
        app.shutdown()


def test_server_sent_events_arrive_one_by_one(router: Router, layout: Layout) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    next_event = threading.Event()

    def serve_events() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
                         b"data: one\n\n")
            next_event.wait(10)  # the second event only once the first went through nginx
            conn.sendall(b"data: two\n\n")

    threading.Thread(target=serve_events, daemon=True).start()
    write_route(layout, Route("shop", 2, (f"127.0.0.1:{listener.getsockname()[1]}",)))
    response = requests.get(f"http://127.0.0.1:{router.port}/events", stream=True, timeout=5,
                            headers={"Host": "shop.localhost", "Accept": "text/event-stream"})
    lines = response.iter_lines()
    assert next(lines) == b"data: one"
    next_event.set()
    assert [line for line in lines if line] == [b"data: two"]
    listener.close()


def websocket_echo_server() -> socket.socket:
    """A real RFC 6455 server: handshake with Sec-WebSocket-Accept, echoes one text frame."""
    import base64

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(
                key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            head = conn.recv(2)
            size = head[1] & 0x7F
            mask = conn.recv(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(conn.recv(size)))
            reply = b"echo: " + data
            conn.sendall(bytes([0x81, len(reply)]) + reply)

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_a_websocket_echoes_through_the_router(router: Router, layout: Layout) -> None:
    listener = websocket_echo_server()
    write_route(layout, Route("shop", 2, (f"127.0.0.1:{listener.getsockname()[1]}",)))
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as client:
        client.sendall(b"GET /socket HTTP/1.1\r\nHost: shop.localhost\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 101")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer
        mask, text = b"\x01\x02\x03\x04", b"hello"
        client.sendall(bytes([0x81, 0x80 | len(text)]) + mask
                       + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
        frame = client.recv(4096)
        assert frame == bytes([0x81, 11]) + b"echo: hello"
    listener.close()


# custom domains and HTTPS ----------------------------------------------------------------------
def make_certificate(folder: Path, host: str, name: str = "cert") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (and its key), made with openssl."""
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def https_get(port: int, host: str, cafile: Path, path: str = "/") -> tuple[str, str]:
    """(status line, body) of a GET over TLS with SNI ``host``, checked against ``cafile``."""
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


def shipway(layout: Layout, *args: str) -> int:
    return main(["--home", str(layout.home), *args])


def test_a_custom_domain_routes_to_its_app_and_belongs_to_one_app(
    router: Router, layout: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    app = backend("shop-dyno")
    write_route(layout, Route("shop", 2, (address(app),)))
    create_app(layout, "other", "dev@example.com")
    assert get(router, host="www.shop.test")[0] == 404

    assert shipway(layout, "domains:add", "WWW.Shop.test", "-a", "shop") == 0
    assert capsys.readouterr().out.splitlines()[0] == "Adding www.shop.test to shop... done"
    assert get(router, "/hi", host="www.shop.test") == (200, "shop-dyno /hi 127.0.0.1")
    assert get(router, "/hi", host="shop.localhost") == (200, "shop-dyno /hi 127.0.0.1")

    assert shipway(layout, "domains:add", "www.shop.test", "-a", "other") == 1
    assert capsys.readouterr().err == " !    www.shop.test is already taken by another app.\n"
    assert shipway(layout, "domains:add", "bad_host!", "-a", "other") == 1
    assert "is not a valid domain name" in capsys.readouterr().err
    assert shipway(layout, "domains:add", "x.localhost", "-a", "other") == 2
    assert "under the router's domain localhost" in capsys.readouterr().err
    assert shipway(layout, "domains", "-a", "other") == 0
    assert capsys.readouterr().out.splitlines() == [
        "=== other Shipway Domain", "other.localhost", "",
        "=== other Custom Domains", "other has no custom domains."]
    assert shipway(layout, "domains", "-a", "shop") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "www.shop.test"

    assert shipway(layout, "domains:remove", "www.shop.test", "-a", "shop") == 0
    assert capsys.readouterr().out == "Removing www.shop.test from shop... done\n"
    assert get(router, host="www.shop.test")[0] == 404
    app.shutdown()


def test_https_with_an_operators_certificate(
    router: Router, layout: Layout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = backend("secure")
    write_route(layout, Route("shop", 2, (address(app),), ("web.1",)))
    cert, key = make_certificate(tmp_path, "www.shop.test")
    _, other_key = make_certificate(tmp_path, "www.shop.test", "other")
    assert shipway(layout, "domains:add", "www.shop.test", "-a", "shop") == 0

    assert shipway(layout, "certs:add", str(cert), str(other_key), "-a", "shop") == 2
    captured = capsys.readouterr()
    assert captured.err == " !    The private key does not match the certificate.\n"
    assert shipway(layout, "certs", "-a", "shop") == 0
    assert capsys.readouterr().out.startswith("shop has no SSL certificates.")
    assert not (layout.app_dir("shop") / "tls").exists()  # nothing half-written

    assert shipway(layout, "certs:add", str(cert), str(key), "-a", "shop") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Adding SSL certificate to shop... done"
    assert "Common Name(s):     www.shop.test" in out
    status, body = https_get(router.https_port, "www.shop.test", cert, "/hello")
    assert (status, body) == ("HTTP/1.1 200 OK", "secure /hello 127.0.0.1")
    status, body = https_get(router.https_port, "www.shop.test", cert, "/headers")
    assert "X-Forwarded-Proto: https" in body
    assert f"X-Forwarded-Port: {router.https_port}" in body
    with pytest.raises(ssl.SSLError):  # a host without a certificate gets no handshake
        https_get(router.https_port, "other.localhost", cert)

    assert shipway(layout, "certs:remove", "-a", "shop") == 0
    assert capsys.readouterr().out == "Removing SSL certificate from shop... done\n"
    with pytest.raises(ssl.SSLError):
        https_get(router.https_port, "www.shop.test", cert)
    app.shutdown()


def test_router_lines_in_the_apps_logs(
    router: Router, layout: Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    assert get(router, "/before-deploy")[0] == 503
    app = backend("logged")
    write_route(layout, Route("shop", 2, (address(app),), ("web.1",)))
    conn = http.client.HTTPConnection("127.0.0.1", router.port, timeout=10)
    conn.request("GET", "/items?page=2", headers={"Host": "shop.localhost",
                                                  "X-Request-Id": "req-from-the-client-1"})
    assert conn.getresponse().read().startswith(b"logged")
    conn.close()
    deadline = time.monotonic() + 5
    while "req-from-the-client-1" not in nginx.router_log(layout, "shop").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert shipway(layout, "logs", "-a", "shop", "--source", "router") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"\S+\+00:00 router: at=error code=H14 desc=\"No web processes running\" method=GET "
        r"path=\"/before-deploy\" host=shop\.localhost request_id=[0-9a-f]{32} "
        r"fwd=\"127\.0\.0\.1\" dyno= connect= service= status=503 bytes=\d+ protocol=http",
        lines[0]), lines[0]
    assert re.fullmatch(
        r"\S+\+00:00 router: at=info method=GET path=\"/items\?page=2\" host=shop\.localhost "
        r"request_id=req-from-the-client-1 fwd=\"127\.0\.0\.1\" dyno=web\.1 connect=\d+ms "
        r"service=\d+ms status=200 bytes=\d+ protocol=http", lines[1]), lines[1]
    assert shipway(layout, "logs", "-a", "shop", "--source", "nginx") == 2
    assert capsys.readouterr().err.startswith(" !    Unknown log source 'nginx'")
    app.shutdown()
