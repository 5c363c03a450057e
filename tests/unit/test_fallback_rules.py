"""Fallback when a channel gives up (workers/fallback.py): which dead letters send a copy, what the copy
is, and the settings that name fallbacks. End to end with real workers: tests/test_fallback.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from broker import dead_letters, names
from schemas.alert import AlertEvent, Contact, parse_alert
from schemas.settings import ChannelsSettings
from tests.support.alert_events import alert_event
from workers import age_limit, fallback

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def slack_event() -> AlertEvent:
    return alert_event("PROBLEM", "service", "slack").model_copy(
        update={"contact": Contact(name="alice", email="alice@example.org", address="C0ALICE")}
    )


@pytest.mark.parametrize("reason", [dead_letters.PERMANENT, dead_letters.MAX_ATTEMPTS, dead_letters.EXPIRED])
def test_a_channel_that_gave_up_sends_a_copy_to_each_fallback(reason: str) -> None:
    event = alert_event("PROBLEM", "service", "slack")
    assert fallback.channels_for(event, {}, reason, ["email", "webhook"]) == ["email", "webhook"]


@pytest.mark.parametrize("reason", [dead_letters.INVALID, dead_letters.UNSUPPORTED_SCHEMA, dead_letters.UNROUTABLE])
def test_what_no_channel_could_deliver_sends_no_copy(reason: str) -> None:
    assert fallback.channels_for(alert_event("PROBLEM", "service", "slack"), {}, reason, ["email"]) == []


def test_a_dead_letter_that_fell_back_before_sends_no_second_copy_when_replayed() -> None:
    replayed = {names.HEADER_FALLBACK_SENT: b"email", names.HEADER_REPLAY_COUNT: 1}
    assert fallback.channels_for(alert_event("PROBLEM", "service", "slack"), replayed, "permanent", ["email"]) == []


def test_a_copy_never_falls_back_itself() -> None:
    copy = fallback.copy_for(alert_event("PROBLEM", "service", "slack"), "email", "permanent", "refused", NOW)
    assert fallback.channels_for(copy, {}, "permanent", ["slack"]) == []


def test_the_copy_is_the_event_for_the_fallback_channel_with_why() -> None:
    event = slack_event()
    copy = parse_alert(fallback.copy_for(event, "email", "permanent", "x" * 2000, NOW).to_json())
    assert copy.channel == "email"
    assert copy.event_id == f"{event.event_id}~fallback-email"
    assert copy.contact == Contact(name="alice", email="alice@example.org")  # the slack address dropped
    assert copy.fallback is not None
    assert (copy.fallback.from_channel, copy.fallback.reason, copy.fallback.at) == ("slack", "permanent", NOW)
    assert copy.fallback.error == "x" * dead_letters.ERROR_MAX
    assert copy.fallback.original_event_id == event.event_id
    assert copy.output == event.output and copy.created_at == event.created_at


def test_the_copy_gets_a_full_max_age_from_when_it_was_re_addressed() -> None:
    event = alert_event("PROBLEM", "service", "slack")
    late = event.created_at + timedelta(hours=2)
    copy = fallback.copy_for(event, "email", "expired", "older than retry.max_age", late)
    assert age_limit.expired(event, {}, 3600, late)
    assert age_limit.remaining(copy, {}, 3600, late + timedelta(minutes=10)) == 3000


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"slack": {"fallback": ["sms"]}}, "channels.slack.fallback: no channel 'sms'"),
        ({"slack": {"fallback": ["slack"]}}, "channels.slack.fallback names the channel itself"),
        ({"slack": {"fallback": "email,email"}}, "channels.slack.fallback names a channel twice"),
        (
            {"slack": {"fallback": "email"}, "email": {"enabled": False}},
            "channels.slack.fallback: channel 'email' is disabled",
        ),
    ],
    ids=["unknown", "itself", "twice", "disabled"],
)
def test_settings_refuse_a_fallback_with_nowhere_to_go(settings: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ChannelsSettings.model_validate(settings)
    assert error in str(refused.value)


def test_settings_take_fallbacks_as_a_list_or_comma_separated() -> None:
    assert ChannelsSettings.model_validate({"slack": {"fallback": "email, webhook"}}).slack.fallback == [
        "email",
        "webhook",
    ]
    assert ChannelsSettings.model_validate({"mattermost": {"fallback": ["email"]}}).mattermost.fallback == ["email"]
    assert ChannelsSettings().slack.fallback == []
