"""Prometheus metrics of a channel worker, and its `/metrics` + `/healthz` endpoint.

`/healthz` answers 200 while the worker is connected and consuming, 503 otherwise (for a load
balancer's or Kubernetes' liveness probe). Port 0 turns the endpoint off; the metrics are kept anyway.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app

DELIVERED = "delivered"
RETRIED = "retried"
DEAD = "dead"

DELIVERIES = Counter(
    "alertq_deliveries_total", "Messages settled by channel workers, by outcome.", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "alertq_delivery_seconds",
    "Time of one delivery attempt to the endpoint (quick retries included).",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter("alertq_retries_total", "Messages sent to a broker delay queue for a later attempt.", ["channel"])
DEAD_LETTERS = Counter("alertq_dead_letters_total", "Messages dead-lettered, by reason.", ["channel", "reason"])
IN_FLIGHT = Gauge("alertq_in_flight", "Messages this worker holds unacked.", ["channel"])

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not worth a line
        pass


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve(host: str, port: int, healthy: Callable[[], bool]) -> WSGIServer:
    """Serve /metrics and /healthz on a daemon thread; returns the server (`.shutdown()` stops it)."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok = healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"status": "ok" if ok else "not consuming"}).encode()]
        if environ.get("PATH_INFO") == "/metrics":
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"/metrics or /healthz\n"]

    server = make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
