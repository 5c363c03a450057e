"""`alertq sink`'s process: the HTTP app and the SMTP server on one event loop, until SIGTERM/Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import click
import structlog
import uvicorn

from alertq import listening
from alertq.common import one_line
from alertq.sink import smtp
from alertq.sink.app import create_app
from alertq.sink.store import Store
from schemas.sink import SinkSettings

log = structlog.get_logger("alertq.sink")


def run(settings: SinkSettings) -> None:
    # Both ports are bound before serving, so a port in use is one clear line, not a traceback from uvicorn.
    http_socket = listening.bind(settings.host, settings.http_port, "HTTP")
    asyncio.run(_serve(settings, http_socket))


async def _serve(settings: SinkSettings, http_socket: socket.socket) -> None:
    store = Store(settings.max_messages)
    try:
        smtp_server = await smtp.start(store, settings.host, settings.smtp_port)
    except OSError as exc:
        http_socket.close()
        raise click.ClickException(
            one_line(f"cannot listen for SMTP on {settings.host}:{settings.smtp_port}: {exc.strerror}")
        ) from None
    app = create_app(settings, store)
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    click.echo(f"preview: {settings.public_url()}/", err=True)
    click.echo(
        f"hooks: {settings.public_url()}/hooks/{{mattermost,slack,webhook}}/<name>; "
        f"SMTP: {settings.host}:{settings.smtp_port}",
        err=True,
    )
    click.echo(
        f"chat APIs: Mattermost {settings.public_url()}/api/v4/, Slack {settings.public_url()}/api/ "
        f"({'the configured tokens' if settings.mattermost.tokens or settings.slack.tokens else 'any token'}); "
        f"calls: {settings.public_url()}/api/calls",
        err=True,
    )
    log.info("sink.started", http_port=settings.http_port, smtp_port=settings.smtp_port)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, once its own handlers are gone; these
    # take it then, so a requested stop ends with exit 0 as in every alertq process.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    try:
        await server.serve(sockets=[http_socket])
    finally:
        smtp_server.close()
        await smtp_server.wait_closed()
        log.info("sink.stopped")


def _stopped(signum: int, frame: FrameType | None) -> None:
    pass
