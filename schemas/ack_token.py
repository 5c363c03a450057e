"""Signed tokens in chat "Acknowledge" buttons: made by the channels, verified by the ack listener.

A token names the incident (host id, service id or none) and the event it was sent with, plus an
expiry, and carries an HMAC-SHA256 over exactly those bytes. It is self-contained: the listener
trusts only what the token says, never the rest of the button's context, which a chat server (or
anyone who can post to the listener) could alter. Pure functions, no I/O: the clock is a parameter.

Format: `v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "v1." + claims segment))>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.alert import AlertEvent
    from schemas.channels import AckSettings

VERSION = "v1"


class InvalidToken(Exception):
    """Malformed, forged (wrong secret, altered) or expired. The message never contains the secret."""


@dataclass(frozen=True)
class AckClaims:
    host_id: str
    service_id: str | None
    event_id: str
    expires_at: int

    @property
    def kind(self) -> str:
        return "host" if self.service_id is None else "service"


def make_token(secret: str | bytes, claims: AckClaims) -> str:
    body = json.dumps(
        {"h": claims.host_id, "s": claims.service_id, "e": claims.event_id, "x": claims.expires_at},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()  # ASCII-escaped: any id, even one with a lone surrogate, makes a token
    signed = f"{VERSION}.{_b64(body)}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def sign_incident(
    secret: str | bytes, *, host_id: str, service_id: str | None, event_id: str, now: float, ttl: int
) -> str:
    """The token for acknowledging this incident until `now + ttl` seconds."""
    return make_token(secret, AckClaims(host_id, service_id, event_id, int(now) + ttl))


def token_for(event: AlertEvent, ack: AckSettings, *, now: float) -> str:
    """The Acknowledge button's token for this event's incident, signed with the `[ack]` settings."""
    if ack.signing_secret is None:
        raise ValueError("ack.signing_secret is not set")
    return sign_incident(
        ack.signing_secret.get_secret_value(),
        host_id=event.host.id,
        service_id=None if event.service is None else event.service.id,
        event_id=event.event_id,
        now=now,
        ttl=ack.token_ttl,
    )


def verify_token(secret: str | bytes, token: str, *, now: float) -> AckClaims:
    """The claims of a genuine, unexpired token; else `InvalidToken` saying why."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidToken("malformed token")
    signed, signature = f"{parts[0]}.{parts[1]}", parts[2]
    try:
        given = _unb64(signature)
    except ValueError:
        raise InvalidToken("malformed token") from None
    # compare_digest: a forger learns nothing from how long the comparison took.
    if not hmac.compare_digest(given, _mac(secret, signed)):
        raise InvalidToken("bad signature")
    try:
        raw = json.loads(_unb64(parts[1]))
        claims = AckClaims(
            host_id=_text(raw["h"]),
            service_id=None if raw["s"] is None else _text(raw["s"]),
            event_id=_text(raw["e"]),
            expires_at=int(raw["x"]),
        )
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("malformed token") from None
    if now >= claims.expires_at:
        raise InvalidToken("token expired")
    return claims


def _mac(secret: str | bytes, signed: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, signed.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value
