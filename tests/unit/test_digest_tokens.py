"""Digest Acknowledge tokens (schemas/ack_token.py `d1`) and their clicks (ack_listener/clicks.py): a
token is accepted only as signed, and a Slack click on the digest's button or its menu of lines carries it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from ack_listener import clicks
from schemas.ack_token import (
    DigestClaims,
    InvalidToken,
    is_digest_token,
    make_digest_token,
    members_hash,
    verify_digest_token,
)

SECRET = "digest-signing-secret-0123456789abcdef"
LINES = [("web01/disk", "e1"), ("web02/disk", "e2")]


def claims(position: int | None = None) -> DigestClaims:
    return DigestClaims(7, 0, members_hash(LINES), 2_000_000_000, position)


def test_a_digest_token_round_trips_and_fits_a_slack_menu_option() -> None:
    for position in (None, 99):
        token = make_digest_token(SECRET, claims(position))
        assert is_digest_token(token) and len(token) <= 150
        assert verify_digest_token(SECRET, token, now=0) == claims(position)


def test_the_hash_binds_the_lines_and_their_order() -> None:
    assert members_hash(LINES) != members_hash(list(reversed(LINES)))
    assert members_hash(LINES) != members_hash([*LINES, ("web03/disk", "e3")])


@pytest.mark.parametrize("secret", ["another-secret-0123456789abcdef0123", SECRET + "x"])
def test_a_token_signed_with_another_secret_is_refused(secret: str) -> None:
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_digest_token(SECRET, make_digest_token(secret, claims()), now=0)


def test_an_expired_or_respelled_token_is_refused() -> None:
    token = make_digest_token(SECRET, claims())
    with pytest.raises(InvalidToken, match="expired"):
        verify_digest_token(SECRET, token, now=2_000_000_000)
    with pytest.raises(InvalidToken):
        verify_digest_token(SECRET, token + "=", now=0)
    with pytest.raises(InvalidToken):
        verify_digest_token(SECRET, "v2" + token[2:], now=0)


def slack_click(action: dict[str, object]) -> bytes:
    payload = {"type": "block_actions", "user": {"username": "jdoe"}, "actions": [action]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_a_slack_click_on_acknowledge_all_or_on_one_line_of_the_menu_carries_its_token() -> None:
    every = make_digest_token(SECRET, claims())
    one = make_digest_token(SECRET, claims(1))
    button = slack_click({"type": "button", "action_id": clicks.SLACK_DIGEST_ACTION_ID, "value": every})
    assert clicks.slack(button).token == every
    menu = slack_click(
        {"type": "static_select", "action_id": clicks.SLACK_ITEM_ACTION_ID, "selected_option": {"value": one}}
    )
    assert clicks.slack(menu).token == one
