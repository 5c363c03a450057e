"""The sink's SMTP server: every mail it is sent is kept (subject, from, to, text and HTML parts)."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from alertq.sink.store import Store

log = structlog.get_logger("alertq.sink")


class KeepMail:
    """aiosmtpd handler: accept every recipient, store the message, answer 250."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        mail = message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=policy.default)
        assert isinstance(mail, EmailMessage)
        stored = self.store.add("email", "smtp", mail_payload(mail, envelope))
        log.info("sink.received", channel="email", id=stored.id)
        return "250 Message accepted for delivery"


def mail_payload(mail: EmailMessage, envelope: Envelope) -> dict[str, Any]:
    return {
        "subject": str(mail.get("Subject", "")),
        "from": str(mail.get("From", "")) or str(envelope.mail_from or ""),
        "to": [str(r) for r in envelope.rcpt_tos],
        "header_to": str(mail.get("To", "")),
        "date": str(mail.get("Date", "")),
        "message_id": str(mail.get("Message-ID", "")),
        "text": _part(mail, "plain"),
        "html": _part(mail, "html"),
    }


def _part(mail: EmailMessage, subtype: str) -> str:
    body = mail.get_body(preferencelist=(subtype,))
    if body is None:
        return ""
    content = body.get_content()
    # SMTP carries CRLF line ends; the text as written has LF.
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


async def start(store: Store, host: str, port: int) -> asyncio.Server:
    """An SMTP server on the running loop (the HTTP server's), so both share one process and store."""
    loop = asyncio.get_running_loop()
    handler = KeepMail(store)
    return await loop.create_server(
        # Any login is accepted, in clear: a channel set up with credentials still delivers to the preview.
        lambda: SMTP(handler, hostname="alertq-sink", authenticator=accept_any_login, auth_require_tls=False),
        host=host,
        port=port,
    )


def accept_any_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    return AuthResult(success=True)
