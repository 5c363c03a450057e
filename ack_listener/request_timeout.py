"""uvicorn's h11 protocol with a deadline for each whole request, headers and body.

uvicorn bounds only the idle time between two requests (`timeout_keep_alive`), and any byte that
arrives cancels even that: a client that sends one byte a second holds a connection (and a file
descriptor, and its buffers) forever, and a few hundred such clients starve the listener. Here each
request must be received completely within `request_timeout` seconds, counted from the moment the
connection was opened or the previous answer was sent. A late client is answered 408 and
disconnected, or, if it had not sent a byte, just disconnected (as uvicorn's keep-alive timeout does:
an answer nobody asked for would confuse a proxy that reuses the connection). The time the app takes
to answer is not counted; that is bounded by the app itself (`publish_timeout`).

This subclasses uvicorn's `H11Protocol` because nothing in uvicorn's configuration reaches the time
before the request's headers are complete, which is where a slow client sits first; an ASGI
middleware starts only after that.
"""

from __future__ import annotations

import asyncio
import json

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger("alertq.ack_listener")

# States in which the client has sent all of its request (or the connection is finished either way).
_RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR, h11.SWITCHED_PROTOCOL)


class RequestTimeoutProtocol(H11Protocol):
    """Use `with_request_timeout(seconds)`: uvicorn builds one protocol object per connection from the class."""

    request_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in _RECEIVED:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's time starts now. A pipelined one may already have been read completely
        # in super() (it handles buffered events), which leaves the client's state past IDLE.
        if not self.transport.is_closing() and self.conn.their_state not in _RECEIVED:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._request_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _request_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            # Between requests: part of the next request's headers, or nothing at all.
            unanswered = bool(self.conn.trailing_data[0])
        else:
            # The headers are in, the body is not; the app may have answered already (413 on a
            # declared length), and then only the connection is left to close.
            unanswered = self.cycle is not None and not self.cycle.response_started
        if unanswered:
            # Written as bytes, not through h11: with the headers incomplete h11 has no request to
            # answer, and the connection is closed right after anyway.
            body = json.dumps({"error": f"the request was not received within {self.request_timeout:g} s"}).encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
        if self.cycle is not None and not self.cycle.response_complete:
            # The app may be waiting for the rest of the body: it now reads a disconnect, and
            # whatever it answers is dropped (the client has its 408).
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        log.warning(
            "ack_listener.request_timeout",
            client=self.client[0] if self.client else None,
            timeout=self.request_timeout,
            answered_408=unanswered,
        )
        self.transport.close()


def with_request_timeout(seconds: float) -> type[RequestTimeoutProtocol]:
    """The protocol class for uvicorn's `http=` with this deadline per request."""
    return type("AckListenerHttpProtocol", (RequestTimeoutProtocol,), {"request_timeout": seconds})
