"""`alertq ack-listener`'s process: the publisher thread and the HTTP app, until SIGTERM/Ctrl-C.

The command binds the listening socket (a port in use is its one-line error) and hands it over."""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import structlog
import uvicorn

from ack_listener.app import create_app
from ack_listener.publisher import AckPublisher
from ack_listener.request_timeout import with_request_timeout
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack_listener")


def run(settings: Settings, sock: socket.socket) -> None:
    if settings.ack.signing_secret is None:
        log.warning(
            "ack_listener.no_signing_secret", effect="every click is answered 503 until ack.signing_secret is set"
        )
    publisher = AckPublisher(settings)
    publisher.start()
    try:
        asyncio.run(_serve(settings, publisher, sock))
    finally:
        publisher.stop()


async def _serve(settings: Settings, publisher: AckPublisher, sock: socket.socket) -> None:
    app = create_app(settings, publisher)
    config = uvicorn.Config(
        app,
        # uvicorn's h11 protocol with a deadline per request: without it a client that trickles bytes
        # holds its connection forever (ack_listener/request_timeout.py).
        http=with_request_timeout(settings.ack_listener.request_timeout),
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    log.info("ack_listener.started", host=host, port=port)
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)  # uvicorn re-raises after its graceful stop; exit 0 instead
    await server.serve(sockets=[sock])
    log.info("ack_listener.stopped")


def _stopped(signum: int, frame: FrameType | None) -> None:
    pass
