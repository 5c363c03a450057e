"""Helpers shared by the chat channel tests: signed-token checks and secret-leak checks."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from schemas.ack_token import AckClaims, problem_id_of, verify_token
from schemas.alert import AlertEvent

TOKEN = re.compile(r"^v2\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
SIGNING_SECRET = "golden-signing-secret-0123456789"


def normalise_tokens(payload: Any, event: AlertEvent, ttl: int) -> tuple[Any, int]:
    """Replace every signed token with "<signed token>", after checking that it is genuine, names this
    event's incident and problem and expires `ttl` seconds from now. Returns the payload and how many
    there were."""
    found = 0

    def walk(value: Any) -> Any:
        nonlocal found
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and TOKEN.match(value):
            began = event.escalation.since if event.escalation and event.escalation.since else event.created_at
            claims = verify_token(SIGNING_SECRET, value, now=time.time())
            assert claims == AckClaims(
                host_id=event.host.id,
                service_id=None if event.service is None else event.service.id,
                event_id=event.event_id,
                expires_at=claims.expires_at,
                problem_id=problem_id_of(event.problem_id),
                problem_since=int(began.timestamp()),
            )
            assert abs(claims.expires_at - (time.time() + ttl)) < 120
            found += 1
            return "<signed token>"
        return value

    return walk(payload), found


def pretty(payload: Any) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


@contextmanager
def own_server(ssl_context: ssl.SSLContext | None = None) -> Iterator[HTTPServer]:
    """A private HTTP(S) server for one test, for what must not leak into the shared `httpserver`
    (a handler still sleeping after its test ended would log its request into the next test)."""
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=ssl_context)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@contextmanager
def stalling_server(path: str) -> Iterator[HTTPServer]:
    """A server whose answer at `path` never comes before the client gives up."""
    release = threading.Event()

    def stall(request: Request) -> Response:
        release.wait(10)
        return Response("ok")

    with own_server() as server:
        server.expect_request(path).respond_with_handler(stall)
        try:
            yield server
        finally:
            release.set()
