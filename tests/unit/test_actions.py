"""The chat actions' pure parts: tokens naming their action, the message versions, Snooze end times,
which buttons a post gets, and what counts as proof that the core applied an action."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from ack_listener.proof import applied, why_not
from cores.base import ProblemState
from schemas.ack import AckMessage, parse_ack
from schemas.ack_token import AckClaims, InvalidToken, make_token, sign_incident, verify_token
from schemas.actions import ACTIONS, Action, check_snooze_choice, snooze_end, snooze_label
from schemas.channels import AckSettings, MattermostSettings, SlackSettings
from tests.support.alert_events import alert_event
from workers.channels.buttons import buttons_for
from workers.conversations.render import RootView, mattermost_root, slack_root

SECRET = "s" * 32
NOW = 1_800_000_000.0


def claims_of(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    parsed: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return parsed


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_round_trips_through_its_signed_token(action: Action) -> None:
    snooze = "4h" if action == "snooze" else None
    token = sign_incident(
        SECRET,
        host_id="h",
        service_id="s",
        event_id="e",
        now=NOW,
        ttl=60,
        action=action,
        snooze=snooze,
    )
    claims = verify_token(SECRET, token, now=NOW)
    assert (claims.action, claims.snooze) == (action, snooze)


def test_an_acknowledge_token_is_spelled_as_before_there_were_actions() -> None:
    token = sign_incident(SECRET, host_id="h", service_id=None, event_id="e", now=NOW, ttl=60)
    assert set(claims_of(token)) == {"h", "s", "e", "x", "p", "t"}
    # Spelling the default out is another byte string for the same claims: not canonical, refused.
    raw = json.dumps({**claims_of(token), "a": "acknowledge"}, separators=(",", ":"), sort_keys=True).encode()
    import hashlib
    import hmac

    signed = "v2." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    mac = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()
    spelled_out = signed + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="malformed"):
        verify_token(SECRET, spelled_out, now=NOW)


def test_a_snooze_names_a_valid_choice_and_no_other_action_names_one() -> None:
    with pytest.raises(ValueError):
        make_token(SECRET, AckClaims("h", None, "e", int(NOW) + 60, action="snooze"))
    with pytest.raises(ValueError):
        make_token(SECRET, AckClaims("h", None, "e", int(NOW) + 60, action="recheck", snooze="1h"))
    with pytest.raises(ValueError):
        make_token(SECRET, AckClaims("h", None, "e", int(NOW) + 60, action="snooze", snooze="forever"))


@pytest.mark.parametrize("choice", ["1h", "30m", "2d", "until 08:00", "until 23:59", "366d"])
def test_snooze_choices_people_write_are_accepted(choice: str) -> None:
    assert check_snooze_choice(choice) == choice


@pytest.mark.parametrize("choice", ["", "0h", "1 h", "h", "until 8:00", "until 24:00", "367d", "1w", "-1h"])
def test_other_snooze_choices_are_refused(choice: str) -> None:
    with pytest.raises(ValueError):
        check_snooze_choice(choice)


def test_until_eight_is_today_before_eight_and_tomorrow_after() -> None:
    zone = timezone(timedelta(hours=1))
    early = datetime(2026, 12, 2, 7, 15, tzinfo=zone)
    late = datetime(2026, 12, 2, 9, 0, tzinfo=zone)
    assert snooze_end("until 08:00", early) == datetime(2026, 12, 2, 8, 0, tzinfo=zone)
    assert snooze_end("until 08:00", late) == datetime(2026, 12, 3, 8, 0, tzinfo=zone)
    assert snooze_end("4h", late) == late + timedelta(hours=4)
    assert (snooze_label("1h"), snooze_label("until 08:00")) == ("Snooze 1 h", "Snooze until 08:00")


def message(**fields: Any) -> AckMessage:
    base: dict[str, Any] = {
        "ack_id": "a1",
        "received_at": datetime.now(UTC),
        "source": "slack",
        "chat_user": "alice",
        "author": "alice",
        "comment": "c",
        "kind": "service",
        "host_id": "h",
        "service_id": "s",
        "event_id": "e",
    }
    return AckMessage.model_validate({**base, **fields})


def test_an_acknowledge_is_written_as_ack_1_and_the_other_actions_as_ack_2() -> None:
    assert message().schema_ == "alertq.ack/1"
    assert message(action="recheck").schema_ == "alertq.ack/2"
    recheck = json.loads(message(action="recheck").to_json())
    assert parse_ack(json.dumps(recheck).encode()).action == "recheck"
    # An older writer's ack/1 has no action: an acknowledgement.
    old = {k: v for k, v in json.loads(message().to_json()).items() if k not in ("action", "snooze")}
    assert parse_ack(json.dumps(old).encode()).action == "acknowledge"
    with pytest.raises(ValidationError, match="can only acknowledge"):
        parse_ack(json.dumps({**recheck, "schema": "alertq.ack/1"}).encode())
    with pytest.raises(ValidationError, match="downtime_start"):
        message(action="snooze", snooze="1h")


def two_way(actions: list[str]) -> MattermostSettings:
    settings = MattermostSettings.model_validate({"two_way": True, "ack_url": "http://l/x", "actions": actions})
    settings.with_ack(AckSettings.model_validate({"signing_secret": SECRET, "snooze_choices": ["1h", "until 08:00"]}))
    return settings


def test_problems_get_the_channels_problem_buttons_and_acknowledgements_the_others() -> None:
    everything = two_way(["acknowledge", "snooze", "recheck", "unacknowledge"])
    problem = alert_event("PROBLEM", "service", "mattermost")
    acknowledged = alert_event("ACKNOWLEDGEMENT", "service", "mattermost")
    recovery = alert_event("RECOVERY", "service", "mattermost")
    keys = [b.key for b in buttons_for(problem, everything, NOW)]
    assert keys == ["ack", "snooze0", "snooze1", "recheck"]
    assert [b.key for b in buttons_for(acknowledged, everything, NOW)] == ["snooze0", "snooze1", "recheck", "unack"]
    assert buttons_for(recovery, everything, NOW) == []
    assert [b.label for b in buttons_for(problem, two_way(["recheck", "acknowledge"]), NOW)] == [
        "Recheck now",
        "Acknowledge",
    ]
    for button in buttons_for(problem, everything, NOW):
        claims = verify_token(SECRET, button.token, now=NOW + 1)
        assert claims.action == button.action and claims.host_id == problem.host.id


def state(**fields: Any) -> ProblemState:
    return ProblemState(**{"state": 2, "acknowledged": False, **fields})


def test_proof_is_what_the_core_shows_after_the_command() -> None:
    sent = NOW
    assert applied(message(), state(acknowledged=True), sent) is True
    assert applied(message(), state(), sent) is False
    assert applied(message(), state(acknowledged=True, as_of=sent - 5), sent) is False  # a view from before
    assert applied(message(), None, sent) is None
    assert applied(message(action="unacknowledge"), state(), sent) is True
    end = datetime.now(UTC) + timedelta(hours=1)
    snooze = message(action="snooze", snooze="1h", downtime_start=datetime.now(UTC), downtime_end=end)
    assert applied(snooze, state(in_downtime=True), sent) is True
    assert applied(snooze, state(in_downtime=False), sent) is False
    assert applied(message(action="recheck"), state(last_check=sent + 1, next_check=sent + 300), sent) is True
    assert applied(message(action="recheck"), state(last_check=sent - 60, next_check=sent + 1), sent) is True
    assert applied(message(action="recheck"), state(last_check=sent - 60, next_check=sent + 300), sent) is False
    assert "does not know" in why_not(message(), None, known=False)
    assert "OK again" in why_not(message(), state(state=0), known=True)


def test_an_api_mode_root_once_acknowledged_keeps_snooze_recheck_and_offers_unacknowledge() -> None:
    settings = two_way(["acknowledge", "snooze", "recheck", "unacknowledge"])
    slack_settings = SlackSettings.model_validate(
        {"two_way": True, "actions": ["acknowledge", "recheck", "unacknowledge"]}
    )
    slack_settings.with_ack(AckSettings.model_validate({"signing_secret": SECRET}))
    problem = alert_event("PROBLEM", "service", "mattermost")
    open_root = RootView(problem, (), None, None, None)
    acknowledged = RootView(problem, (), "alice", "on it", None)
    recovered = RootView(problem, (), "alice", "on it", alert_event("RECOVERY", "service", "mattermost"))

    def mattermost_ids(view: RootView) -> list[str]:
        [attachment] = mattermost_root(view, settings, NOW)
        return [a["id"] for a in attachment.get("actions", [])]

    def slack_ids(view: RootView) -> list[str]:
        blocks = slack_root(view, slack_settings, NOW).blocks
        return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    assert mattermost_ids(open_root) == ["ack", "snooze0", "snooze1", "recheck"]
    assert mattermost_ids(acknowledged) == ["snooze0", "snooze1", "recheck", "unack"]
    assert mattermost_ids(recovered) == []
    assert slack_ids(open_root) == ["alertq_ack", "alertq_recheck"]
    assert slack_ids(acknowledged) == ["alertq_recheck", "alertq_unack"]
    assert slack_ids(recovered) == []
