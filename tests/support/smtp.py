"""A real SMTP server for tests (aiosmtpd in a thread) that keeps what it received, or refuses on cue."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Inbox:
    """An aiosmtpd handler. `rcpt_reply`/`data_reply` set to e.g. "451 4.3.0 try later" make it refuse."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    received: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        return "250 Message accepted for delivery"


def password_checker(login: str, password: str) -> Any:
    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == login.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return authenticate


@contextmanager
def smtp_server(inbox: Inbox, **controller: Any) -> Iterator[int]:
    """Run an SMTP server on a free local port for the block; yields the port."""
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port, **controller)
    server.start()
    try:
        yield port
    finally:
        server.stop()
