"""Signed tokens in chat buttons (Acknowledge, Snooze, Recheck now, Unacknowledge): made by the
channels, verified by the ack listener.

A token names the action (and, for Snooze, the chosen length), the object (host id, service id or
none), the problem it was issued for (the core's problem id when the event carried one, and the
incident's start), the event it was sent with, and an expiry, and carries an HMAC-SHA256 over exactly
those bytes: a button's action cannot be changed without the secret, so a Recheck button never
becomes an Unacknowledge one. An Acknowledge token has no action field at all (its bytes are those
of the tokens made before there were other actions, which therefore still verify as Acknowledge).
It is self-contained: the listener trusts only what the token says, never the rest of the button's
context, which a chat server (or anyone who can post to the listener) could alter.
Pure functions, no I/O: the clock is a parameter.

Format: `v2.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "v2." + claims segment))>`, both
segments canonical base64url without padding. Each token string has exactly one accepted spelling:
re-encodings of the same bytes (padding, spare bits, other alphabets, stray characters) are refused.
`v1` tokens named no problem, so a button could outlive its problem and acknowledge a later one; they
are refused with a message that says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas.actions import Action, check_action, check_snooze_choice

if TYPE_CHECKING:
    from schemas.alert import AlertEvent
    from schemas.channels import AckSettings

VERSION = "v2"
RETIRED_VERSIONS = ("v1",)
SIGNATURE_BYTES = 32  # HMAC-SHA256
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(Exception):
    """Malformed, forged (wrong secret, altered), retired or expired. The message never contains the secret."""


@dataclass(frozen=True)
class AckClaims:
    host_id: str
    service_id: str | None
    event_id: str
    expires_at: int
    # The problem the button was issued for: the core's problem id ($SERVICEPROBLEMID$ /
    # $HOSTPROBLEMID$) when the event carried one, and when the incident began (epoch seconds, from
    # the PROBLEM event's time). None: not known when the token was made.
    problem_id: str | None = None
    problem_since: int | None = None
    action: Action = "acknowledge"
    snooze: str | None = None  # the Snooze choice ("1h", "until 08:00"); only for action "snooze"

    @property
    def kind(self) -> str:
        return "host" if self.service_id is None else "service"


def make_token(secret: str | bytes, claims: AckClaims) -> str:
    _check_action_claims(claims)
    signed = f"{VERSION}.{_b64(_claims_json(claims))}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def sign_incident(
    secret: str | bytes,
    *,
    host_id: str,
    service_id: str | None,
    event_id: str,
    now: float,
    ttl: int,
    problem_id: str | None = None,
    problem_since: float | None = None,
    action: Action = "acknowledge",
    snooze: str | None = None,
) -> str:
    """The token for `action` on this incident's problem until `now + ttl` seconds."""
    since = None if problem_since is None else int(problem_since)
    claims = AckClaims(host_id, service_id, event_id, int(now) + ttl, problem_id, since, action, snooze)
    return make_token(secret, claims)


def token_for(
    event: AlertEvent, ack: AckSettings, *, now: float, action: Action = "acknowledge", snooze: str | None = None
) -> str:
    """The token of this event's `action` button (Acknowledge by default), signed with the `[ack]` settings."""
    if ack.signing_secret is None:
        raise ValueError("ack.signing_secret is not set")
    # An escalation step retells the PROBLEM later: the incident began at `since`, not at the step.
    began = event.escalation.since if event.escalation is not None and event.escalation.since else event.created_at
    return sign_incident(
        ack.signing_secret.get_secret_value(),
        host_id=event.host.id,
        service_id=None if event.service is None else event.service.id,
        event_id=event.event_id,
        now=now,
        ttl=ack.token_ttl,
        problem_id=problem_id_of(event.problem_id),
        problem_since=began.timestamp(),
        action=action,
        snooze=snooze,
    )


def problem_id_of(value: str | None) -> str | None:
    """The core's problem id, or None: Nagios passes 0 (and an unset macro nothing) when there is no problem."""
    if value is None or value.strip() in ("", "0"):
        return None
    return value.strip()


def verify_token(secret: str | bytes, token: str, *, now: float) -> AckClaims:
    """The claims of a genuine, unexpired token; else `InvalidToken` saying why."""
    parts = token.split(".")
    if len(parts) == 3 and parts[0] in RETIRED_VERSIONS:
        raise InvalidToken(
            f"the button comes from an older alertq (token format {parts[0]}, not bound to one problem);"
            " acknowledge in the monitoring core"
        )
    body = _signed_body(secret, parts, VERSION)
    try:
        raw = json.loads(body)
        claims = AckClaims(
            host_id=_text(raw["h"]),
            service_id=_optional_text(raw["s"]),
            event_id=_text(raw["e"]),
            expires_at=_integer(raw["x"]),
            problem_id=_optional_text(raw["p"]),
            problem_since=None if raw["t"] is None else _integer(raw["t"]),
            action=check_action(_text(raw.get("a", "acknowledge"))),
            snooze=_optional_text(raw.get("d")),
        )
        _check_action_claims(claims)
        # Only one byte string per claims: what was signed is what this module writes.
        if _claims_json(claims) != body:
            raise ValueError("not the canonical claims")
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("malformed token") from None
    if now >= claims.expires_at:
        raise InvalidToken("token expired")
    return claims


def _signed_body(secret: str | bytes, parts: list[str], version: str) -> bytes:
    """The body of `version.body.signature` once its signature is this secret's; else `InvalidToken`."""
    if len(parts) != 3 or parts[0] != version:
        raise InvalidToken("malformed token")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        given = _unb64(parts[2])
        body = _unb64(parts[1])
    except ValueError:
        raise InvalidToken("malformed token") from None
    # compare_digest: a forger learns nothing from how long the comparison took.
    if len(given) != SIGNATURE_BYTES or not hmac.compare_digest(given, _mac(secret, signed)):
        raise InvalidToken("bad signature")
    return body


def _claims_json(claims: AckClaims) -> bytes:
    fields: dict[str, Any] = {
        "h": claims.host_id,
        "s": claims.service_id,
        "e": claims.event_id,
        "x": claims.expires_at,
        "p": claims.problem_id,
        "t": claims.problem_since,
    }
    # Acknowledge is the action of a token without "a": the bytes of every Acknowledge token stay as
    # they were before other actions existed, and a token spelling "a":"acknowledge" is not canonical.
    if claims.action != "acknowledge":
        fields["a"] = claims.action
    if claims.snooze is not None:
        fields["d"] = claims.snooze
    # ASCII-escaped: any id, even one with a lone surrogate, makes a token.
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


def _check_action_claims(claims: AckClaims) -> None:
    """A Snooze names its valid choice; no other action names one."""
    if claims.action == "snooze":
        if claims.snooze is None:
            raise ValueError("a snooze token needs its choice")
        check_snooze_choice(claims.snooze)
        if claims.snooze != claims.snooze.strip():
            raise ValueError("not the canonical snooze choice")
    elif claims.snooze is not None:
        raise ValueError(f"a {claims.action} token has no snooze choice")


def _mac(secret: str | bytes, signed: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, signed.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict base64url: the alphabet only, no padding, and the canonical spelling of its bytes (the
    spare bits of the last character zero), so no two strings decode to the same bytes."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("expected an integer")
    return value


# -- digests (alert storms): "Acknowledge all N" and one line's ack, bound to the digest's lines ----------
#
# A digest part lists many problems; its buttons cannot carry them all (Slack takes 2,000 characters
# in a button's value, 150 in a menu option's). So a digest token names the digest and part, and binds
# their list: `members` is a hash of the part's lines (incident and lead event, in order) as the worker
# made them. The listener looks the lines up in the conversations store and acknowledges only when they
# hash to the signed value; `position` limits it to one line. Format as v2, under its own version:
# `d1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "d1." + claims segment))>`.

DIGEST_VERSION = "d1"
MEMBERS_HEX = 16  # 64 bits of SHA-256: a menu option's value stays under Slack's 150 characters


@dataclass(frozen=True)
class DigestClaims:
    digest_id: int
    part: int
    members: str  # members_hash() of the part's lines
    expires_at: int
    position: int | None = None  # one line of the part; None: all of them


def is_digest_token(token: str) -> bool:
    return token.startswith(DIGEST_VERSION + ".")


def members_hash(lines: list[tuple[str, str]]) -> str:
    """The hash a digest token binds: the part's (incident, lead event id) in order."""
    canonical = json.dumps(lines, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:MEMBERS_HEX]


def make_digest_token(secret: str | bytes, claims: DigestClaims) -> str:
    signed = f"{DIGEST_VERSION}.{_b64(_digest_json(claims))}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify_digest_token(secret: str | bytes, token: str, *, now: float) -> DigestClaims:
    """The claims of a genuine, unexpired digest token; else `InvalidToken` saying why."""
    body = _signed_body(secret, token.split("."), DIGEST_VERSION)
    try:
        raw = json.loads(body)
        claims = DigestClaims(
            digest_id=_integer(raw["d"]),
            part=_integer(raw["q"]),
            members=_text(raw["m"]),
            expires_at=_integer(raw["x"]),
            position=None if raw["p"] is None else _integer(raw["p"]),
        )
        if _digest_json(claims) != body:
            raise ValueError("not the canonical claims")
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("malformed token") from None
    if now >= claims.expires_at:
        raise InvalidToken("token expired")
    return claims


def _digest_json(claims: DigestClaims) -> bytes:
    fields: dict[str, Any] = {
        "d": claims.digest_id,
        "q": claims.part,
        "m": claims.members,
        "x": claims.expires_at,
        "p": claims.position,
    }
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
