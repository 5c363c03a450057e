"""Listening sockets for alertq's HTTP servers (ack listener, sink), bound before uvicorn starts so a
port in use is one clear line instead of a traceback."""

from __future__ import annotations

import socket

import click

from alertq.common import one_line


def bind(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on such sockets, and without it every
    # keep-alive answer waits 40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(one_line(f"cannot listen for {what} on {host}:{port}: {exc.strerror}")) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
