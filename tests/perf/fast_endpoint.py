"""A chat webhook that costs next to nothing: threaded, keep-alive, answers 200 `ok` at once and records
when each request arrived (perf_counter) and its body, for the worker benchmarks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FastEndpoint(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.arrivals: list[tuple[float, bytes]] = []  # list.append is atomic: no lock on the hot path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/bench-key"

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.arrivals)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real Mattermost behind nginx
    # Headers and body go out in two writes: with Nagle on, the second waits for the client's delayed
    # ACK (40 ms), which would measure this server, not the worker.
    disable_nagle_algorithm = True
    server: FastEndpoint

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.arrivals.append((time.perf_counter(), body))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def fast_endpoint() -> Iterator[FastEndpoint]:
    server = FastEndpoint()
    thread = threading.Thread(target=server.serve_forever, name="fast-endpoint", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
