"""Signed Acknowledge-button tokens: what a channel signs, the ack listener accepts, and nothing else."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.ack_token import AckClaims, InvalidToken, make_token, sign_incident, verify_token

SECRET = "token-test-secret"
NOW = 1_800_000_000.0


def service_token(**overrides: object) -> str:
    args: dict[str, object] = {"host_id": "h-1", "service_id": "s-1", "event_id": "e-1", "now": NOW, "ttl": 3600}
    args.update(overrides)
    return sign_incident(SECRET, **args)  # type: ignore[arg-type]


def test_signed_token_verifies_with_its_claims() -> None:
    claims = verify_token(SECRET, service_token(), now=NOW + 10)
    assert claims == AckClaims(host_id="h-1", service_id="s-1", event_id="e-1", expires_at=int(NOW) + 3600)
    assert claims.kind == "service"


def test_host_token_has_no_service() -> None:
    claims = verify_token(SECRET, service_token(service_id=None), now=NOW)
    assert claims.service_id is None and claims.kind == "host"


def test_expired_token_is_refused() -> None:
    token = service_token(ttl=60)
    verify_token(SECRET, token, now=NOW + 59)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(SECRET, token, now=NOW + 60)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_token("another-secret", service_token(), now=NOW)


def test_tampered_claims_are_refused() -> None:
    version, body, signature = service_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for field, value in (("h", "other-host"), ("s", None), ("e", "e-2"), ("x", int(NOW) + 10**9)):
        forged = base64.urlsafe_b64encode(json.dumps({**claims, field: value}).encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidToken, match="bad signature"):
            verify_token(SECRET, f"{version}.{forged}.{signature}", now=NOW)


def test_tampered_signature_is_refused() -> None:
    version, body, signature = service_token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_token(SECRET, f"{version}.{body}.{flipped}", now=NOW)


@pytest.mark.parametrize("token", ["", "v1", "v1.abc", "v2.abc.def", "v1.a.b.c", "v1.abc.%%%", "v1.abc.ünï"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token, now=NOW)


def test_validly_signed_nonsense_is_refused() -> None:
    # Signed with the right secret but not our claims: still no crash, a clear refusal.
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(b'{"h": 1}').rstrip(b"=").decode()
    mac = hmac.new(SECRET.encode(), f"v1.{body}".encode(), hashlib.sha256).digest()
    token = f"v1.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidToken, match="malformed"):
        verify_token(SECRET, token, now=NOW)


def test_error_messages_never_contain_the_secret() -> None:
    for token in ("junk", service_token(ttl=1)):
        with pytest.raises(InvalidToken) as caught:
            verify_token(SECRET, token, now=NOW + 100)
        assert SECRET not in str(caught.value)


@given(
    host=st.text(st.characters(exclude_categories=()), min_size=1),
    service=st.none() | st.text(min_size=1),
    event=st.text(min_size=1),
    secret=st.binary(min_size=1),
)
def test_any_incident_round_trips(host: str, service: str | None, event: str, secret: bytes) -> None:
    claims = AckClaims(host_id=host, service_id=service, event_id=event, expires_at=int(NOW) + 5)
    token = make_token(secret, claims)
    assert token.isascii() and " " not in token
    assert verify_token(secret, token, now=NOW) == claims
