"""The `/metrics` + `/healthz` endpoint of a long-running process (channel workers, the escalator).

`/healthz` answers 200 while the process is connected and consuming, 503 otherwise (for a load
balancer's or Kubernetes' liveness probe); `/metrics` is Prometheus' text format of every metric the
process registered. Port 0 turns the endpoint off; the metrics are kept anyway.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app

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
