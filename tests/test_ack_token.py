"""Signed Acknowledge-button tokens: what a channel signs, the ack listener accepts, and nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.ack_token import AckClaims, InvalidToken, make_token, sign_incident, token_for, verify_token

SECRET = "token-test-secret-of-32-characters"
NOW = 1_800_000_000.0


def service_token(**overrides: object) -> str:
    args: dict[str, object] = {"host_id": "h-1", "service_id": "s-1", "event_id": "e-1", "now": NOW, "ttl": 3600}
    args.update(overrides)
    return sign_incident(SECRET, **args)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_by_hand(claims: bytes, version: str = "v2") -> str:
    """A token signed with the right secret over claims this module would never write."""
    body = b64(claims)
    return f"{version}.{body}.{b64(hmac.new(SECRET.encode(), f'{version}.{body}'.encode(), hashlib.sha256).digest())}"


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


@pytest.mark.parametrize(
    "token", ["", "v2", "v2.abc", "v3.abc.def", "v2.abc.def", "v2.a.b.c", "v2.abc.%%%", "v2.abc.ünï"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token, now=NOW)


def test_validly_signed_nonsense_is_refused() -> None:
    # Signed with the right secret but not our claims: still no crash, a clear refusal.
    for claims in (b'{"h": 1}', b'{"e":"e","h":"h","s":null,"x":1800009999}', b"not json"):
        assert signed_by_hand(claims) != service_token()
        with pytest.raises(InvalidToken, match="malformed"):
            verify_token(SECRET, signed_by_hand(claims), now=NOW)


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


def test_the_token_names_the_problem_it_was_issued_for() -> None:
    token = service_token(problem_id="4711", problem_since=NOW - 600.7)
    claims = verify_token(SECRET, token, now=NOW)
    assert (claims.problem_id, claims.problem_since) == ("4711", int(NOW) - 601)


def test_a_button_from_an_alertq_before_binding_is_refused_saying_why() -> None:
    # The v1 format: h, s, e, x and nothing about the problem; signed with the right secret.
    old = signed_by_hand(b'{"e":"e-1","h":"h-1","s":"s-1","x":1800003600}', version="v1")
    with pytest.raises(InvalidToken, match=r"older alertq \(token format v1, not bound to one problem\)"):
        verify_token(SECRET, old, now=NOW)


def _re_encodings(segment: str) -> list[str]:
    """Other spellings of the same bytes, or of nearly the same: what a strict decoder must refuse."""
    last = segment[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last character of an unpadded segment carries spare bits: set one and the bytes stay the same.
    spare = alphabet[alphabet.index(last) | 1] if alphabet.index(last) % 2 == 0 else alphabet[alphabet.index(last) - 1]
    standard = base64.b64encode(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))).decode().rstrip("=")
    return [
        segment[:-1] + spare,  # changed padding bits
        segment + "=",
        segment + "==",  # padding appended
        segment[:5] + "!" + segment[5:],  # junk inside, which a lenient decoder skips
        segment[:5] + " " + segment[5:],
        segment[:5] + "\n" + segment[5:],
        segment + "A",  # one character too many
        standard,  # the standard alphabet (+ and /)
    ]


def test_re_encodings_of_a_valid_token_are_refused() -> None:
    # Signatures are 32 bytes: 43 characters, 2 spare bits. Try tokens until both + and / appear in
    # the standard spelling, so that case is really covered.
    refused = 0
    for event in range(200):
        token = service_token(event_id=f"e-{event}")
        version, body, signature = token.split(".")
        assert verify_token(SECRET, token, now=NOW).event_id == f"e-{event}"
        for spelling in _re_encodings(signature):
            if spelling == signature:
                continue  # no + or / in this one: the standard spelling is the same
            with pytest.raises(InvalidToken):
                verify_token(SECRET, f"{version}.{body}.{spelling}", now=NOW)
            refused += 1
        for spelling in _re_encodings(body):
            if spelling != body:
                with pytest.raises(InvalidToken):
                    verify_token(SECRET, f"{version}.{spelling}.{signature}", now=NOW)
        if "-" in signature and "_" in signature:
            break
    assert refused >= 8


def test_the_channels_button_is_bound_to_the_events_problem() -> None:
    from pydantic import SecretStr

    from schemas.channels import AckSettings
    from tests.support.alert_events import alert_event

    ack = AckSettings(signing_secret=SecretStr(SECRET), token_ttl=600)
    problem = alert_event("PROBLEM", "service", "slack", problem_id="17")  # created 2026-11-27T09:30:00Z
    claims = verify_token(SECRET, token_for(problem, ack, now=NOW), now=NOW)
    assert (claims.problem_id, claims.problem_since) == ("17", 1_795_771_800)
    # Nagios passes 0 when there is no problem id: that binds by time only.
    assert verify_token(SECRET, token_for(problem.model_copy(update={"problem_id": "0"}), ack, now=NOW), now=NOW) == (
        AckClaims(
            "c36b8048-93ce-4385-ac19-ab5c90574b77",
            claims.service_id,
            claims.event_id,
            claims.expires_at,
            None,
            1_795_771_800,
        )
    )
    # An escalation step retells the PROBLEM later; the incident began when the escalation says.
    step = alert_event(
        "PROBLEM", "service", "slack", escalation={"policy": "p", "step": 2, "since": "2026-11-27T09:00:00+00:00"}
    )
    assert verify_token(SECRET, token_for(step, ack, now=NOW), now=NOW).problem_since == 1_795_770_000
