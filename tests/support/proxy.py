"""A small forwarding HTTP proxy for tests: what a site's outbound proxy does for plain-http URLs.

A client configured with it sends the request line in absolute form (`POST http://host:port/path
HTTP/1.1`); the proxy opens its own connection to that host, passes the request on and the answer
back, and remembers what it forwarded (`seen`), so a test can tell a proxied request from a direct
one. CONNECT (tunnels for https) is not offered: the tests' chat stand-ins speak plain http.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that concern one connection only (RFC 9110 7.6.1), never passed on.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True)
class Forwarded:
    method: str
    url: str
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Forwarded] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def _forward(self) -> None:
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self.send_error(400, "a proxy takes absolute http:// URLs only")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.seen.append(Forwarded(self.command, self.path, body))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        try:
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body if body else None, headers)
            answer = upstream.getresponse()
            data = answer.read()
        except OSError as exc:
            self.send_error(502, f"upstream: {type(exc).__name__}")
            return
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Proxy:
    url: str
    server: _Server

    @property
    def seen(self) -> list[Forwarded]:
        with self.server.lock:
            return list(self.server.seen)


@contextmanager
def forwarding_proxy() -> Iterator[Proxy]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, name="test-proxy", daemon=True)
    thread.start()
    try:
        yield Proxy(f"http://127.0.0.1:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()
