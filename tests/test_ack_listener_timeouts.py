"""`alertq ack-listener` as a real process against clients that send too slowly: each request must arrive
whole within `ack_listener.request_timeout`, or the client gets 408 and loses the connection. Clicks at
a normal pace, and a click that arrives in pieces within the bound, still go through."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from broker import names
from schemas.ack import AckMessage
from schemas.ack_token import sign_incident
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import SIGNING_SECRET, Running, ack_listener
from tests.support.rabbit import free_port

REQUEST_TIMEOUT = 2.0
# Room for a loaded machine on top of the bound. Before the bound existed such connections stayed open
# for as long as the client kept trickling, so any limit here tells the two apart.
SLACK = 8.0
TRICKLE_EVERY = 0.2  # seconds between two bytes of a slow client


@pytest.fixture
def listener(declared: Settings, alertq_env: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    with ack_listener(alertq_env, tmp_path / "listener.log", free_port(), request_timeout=str(REQUEST_TIMEOUT)) as run:
        yield run


def click_body(host: str = "web01") -> bytes:
    button = sign_incident(SIGNING_SECRET, host_id=host, service_id="disk", event_id="e1", now=time.time(), ttl=600)
    click = {"user_name": "jdoe", "channel_name": "ops", "post_id": "p1", "context": {"action": "ack", "token": button}}
    return json.dumps(click).encode()


def request_head(content_length: int) -> bytes:
    return (
        b"POST /mattermost/actions HTTP/1.1\r\nHost: alertq\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % content_length
    )


def connect(listener: Running) -> socket.socket:
    parts = urlsplit(listener.url)
    assert parts.hostname is not None and parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def trickle(sock: socket.socket, first: bytes, then: bytes, stop: threading.Event) -> threading.Thread:
    """Send `first` at once, then `then` one byte per TRICKLE_EVERY until stopped or cut off."""

    def run() -> None:
        try:
            sock.sendall(first)
            for byte in then:
                if stop.wait(TRICKLE_EVERY):
                    return
                sock.sendall(bytes([byte]))
        except OSError:
            return  # the listener closed the connection: what the test waits for

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """What the listener sends until it closes the connection, and the seconds that took."""
    sock.settimeout(0.2)
    start = time.monotonic()
    received = b""
    while time.monotonic() - start < limit:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not data:
            break
        received += data
    else:
        pytest.fail(f"the connection was still open after {limit} s; received {received[:200]!r}")
    return received, time.monotonic() - start


ENDLESS = b"X-Padding: " + b"a" * 10_000  # far more than the bound lets through at TRICKLE_EVERY


@pytest.mark.parametrize(
    ("first", "then"),
    [
        pytest.param(
            b"POST /mattermost/actions HTTP/1.1\r\nHost: alertq\r\n", ENDLESS, id="headers-one-byte-at-a-time"
        ),
        pytest.param(request_head(10_000), b"{" + b" " * 9_999, id="body-one-byte-at-a-time"),
        pytest.param(b"", request_head(2), id="request-line-one-byte-at-a-time"),
    ],
)
def test_a_client_that_sends_too_slowly_gets_408_and_is_disconnected_within_the_bound(
    listener: Running, amqp_url: str, first: bytes, then: bytes
) -> None:
    stop = threading.Event()
    with connect(listener) as sock:
        sender = trickle(sock, first, then, stop)
        try:
            received, took = until_closed(sock, REQUEST_TIMEOUT + SLACK)
        finally:
            stop.set()
            sender.join(10)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert json.loads(received.split(b"\r\n\r\n", 1)[1]) == {
        "error": f"the request was not received within {REQUEST_TIMEOUT:g} s"
    }
    print(f"closed after {took:.2f} s (request_timeout {REQUEST_TIMEOUT} s)")  # the measurement, with -s
    log = listener.log_text()
    assert "ack_listener.request_timeout" in log and "Traceback" not in log
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0
    # The listener is still there for everybody else.
    assert requests.get(f"{listener.url}/healthz", timeout=10).status_code == 200


def test_an_idle_connection_is_closed_without_an_answer(listener: Running) -> None:
    with connect(listener) as sock:
        received, _ = until_closed(sock, REQUEST_TIMEOUT + SLACK)
    assert received == b""


def test_a_slow_second_request_on_a_kept_alive_connection_is_cut_off_too(listener: Running) -> None:
    stop = threading.Event()
    with connect(listener) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: alertq\r\n\r\n")
        first = b""
        while b'{"status":"ok"}' not in first:
            chunk = sock.recv(4096)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200 ")
        # Any byte used to cancel uvicorn's keep-alive timeout, and nothing bounded the rest.
        sender = trickle(sock, b"", b"GET /healthz HTTP/1.1\r\n" + ENDLESS, stop)
        try:
            received, _ = until_closed(sock, REQUEST_TIMEOUT + SLACK)
        finally:
            stop.set()
            sender.join(10)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]


def one_answer(sock: socket.socket) -> bytes:
    """One whole answer (by its Content-Length) from a kept-alive connection."""
    sock.settimeout(10)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, received
        body += chunk
    return head + b"\r\n\r\n" + body


def test_clicks_at_a_normal_pace_and_in_pieces_within_the_bound_are_queued(listener: Running, amqp_url: str) -> None:
    answer = requests.post(f"{listener.url}/mattermost/actions", data=click_body("web01"), timeout=10)
    assert answer.status_code == 200, answer.text

    # A click in three pieces with pauses, well within the bound: slow networks are not cut off.
    body = click_body("web02")
    with connect(listener) as sock:
        for piece in (request_head(len(body))[:20], request_head(len(body))[20:], body):
            sock.sendall(piece)
            time.sleep(REQUEST_TIMEOUT / 8)
        received = one_answer(sock)
    assert received.startswith(b"HTTP/1.1 200 "), received[:300]

    acks = [AckMessage.model_validate_json(m.body) for m in amqp.take(amqp_url, names.ACKS_QUEUE, count=2, timeout=10)]
    assert sorted(ack.host_id for ack in acks) == ["web01", "web02"]
