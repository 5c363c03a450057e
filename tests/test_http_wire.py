"""HttpClient's direct path (delivery/http_wire.py) against real TCP servers that answer as scripted: the
answer shapes a webhook may send (chunked, close-delimited, 1xx first, keep-alive dropped), and what
must never go out or be believed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from delivery.http import HttpClient
from delivery.outcomes import Permanent, Retryable, Unreachable
from schemas.channels import HttpSettings

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Script:
    """answers[i]: what the server sends for its i-th request (over all connections); None: close
    the connection without answering. `close_after`: close the connection after that answer."""

    answers: list[bytes | None]
    close_after: set[int] = field(default_factory=set)
    requests: list[tuple[int, bytes]] = field(default_factory=list)  # (connection number, request)
    connections: int = 0


def _read_request(conn: socket.socket, buffer: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(buffer) < end + length:
        buffer += conn.recv(65536)
    request = bytes(buffer[: end + length])
    del buffer[: end + length]
    return request


@contextmanager
def scripted_server(script: Script) -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve(conn: socket.socket, number: int) -> None:
        buffer = bytearray()
        with conn:
            while not stop.is_set():
                request = _read_request(conn, buffer)
                if request is None:
                    return
                index = len(script.requests)
                script.requests.append((number, request))
                answer = script.answers[index]
                if answer is None:
                    return
                conn.sendall(answer)
                if index in script.close_after:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            script.connections += 1
            threading.Thread(target=serve, args=(conn, script.connections), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/key"
    finally:
        stop.set()
        listener.close()


def client(**http: float) -> HttpClient:
    return HttpClient(HttpSettings(**http))


def post(sender: HttpClient, url: str, body: bytes = b'{"text":"hi"}') -> tuple[int, str]:
    answer = sender.post(url, body, {"Content-Type": "application/json"})
    return answer.status_code, answer.text


def test_requests_share_one_kept_alive_connection_and_arrive_whole() -> None:
    script = Script([OK, OK, OK])
    with scripted_server(script) as url:
        sender = client()
        assert [post(sender, url, b'{"n":%d}' % n) for n in range(3)] == [(200, "ok")] * 3
    assert script.connections == 1
    for n, (_, request) in enumerate(script.requests):
        head, _, body = request.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /hooks/key HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in head and b"\r\nContent-Type: application/json" in head
        assert body == b'{"n":%d}' % n


def test_chunked_answer_is_read_whole_and_the_connection_kept() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n"
    script = Script([chunked, OK])
    with scripted_server(script) as url:
        sender = client()
        assert post(sender, url) == (200, "abcde")
        assert post(sender, url) == (200, "ok")
    assert script.connections == 1


def test_connection_close_and_close_delimited_bodies() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbye!"
    old = b"HTTP/1.0 200 OK\r\n\r\nto the end"
    script = Script([closing, old, OK], close_after={0, 1})
    with scripted_server(script) as url:
        sender = client()
        assert post(sender, url) == (200, "bye!")
        assert post(sender, url) == (200, "to the end")
        assert post(sender, url) == (200, "ok")
    assert script.connections == 3


def test_a_keep_alive_connection_the_server_dropped_is_replaced_not_failed() -> None:
    script = Script([OK, OK], close_after={0})  # as a server whose keep-alive timeout ran out
    with scripted_server(script) as url:
        sender = client()
        assert post(sender, url) == (200, "ok")
        time.sleep(0.2)  # for the server's close to reach this side
        assert post(sender, url) == (200, "ok")
    assert script.connections == 2


def test_informational_answers_are_skipped() -> None:
    script = Script(
        [b"HTTP/1.1 100 Continue\r\n\r\n" + b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n"]
    )
    with scripted_server(script) as url:
        answer = client().request("POST", url, b"{}", {})
    assert answer.status_code == 429 and answer.headers.get("retry-after") == "3"


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (None, Unreachable, "connection failed: RemoteDisconnected"),
        (b"SMTP ready\r\n\r\n", Retryable, "connection failed: BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", Retryable, "connection failed: IncompleteRead"),
    ],
)
def test_no_answer_or_a_broken_one_is_retryable(answer: bytes | None, error: type[Exception], text: str) -> None:
    script = Script([answer], close_after={0})
    with scripted_server(script) as url, pytest.raises(error, match=text):
        post(client(), url)


def test_a_slow_answer_times_out() -> None:
    with socket.socket() as listener:  # connections wait in its backlog: accepted, never answered
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/key"
        with pytest.raises(Retryable, match="timed out"):
            post(client(read_timeout=0.3), url)


@pytest.mark.parametrize("header", [{"X-Test": "a\r\nInjected: yes"}, {"Bad Name": "x"}, {"X-Test": "a\nb"}])
def test_header_injection_is_refused_and_nothing_is_sent(header: dict[str, str]) -> None:
    script = Script([OK])
    with scripted_server(script) as url, pytest.raises(Permanent, match="request not sendable"):
        client().post(url, b"{}", header)
    assert script.requests == []
