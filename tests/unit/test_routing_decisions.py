"""Routing decisions: which policy an event falls under, and who of a step is told, on which channel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.alert import AlertEvent
from schemas.routing import RoutingConfig, state_option
from tests.support.alert_events import alert_event

# A Wednesday; 10:00 and 22:00 in Berlin (UTC+1 in winter).
WEDNESDAY_10_BERLIN = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
WEDNESDAY_22_BERLIN = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)

OPS_STEP = {"after": "5m", "notify": ["ops"], "channels": ["mattermost", "email"]}
ROUTING = RoutingConfig.model_validate(
    {
        "timezone": "Europe/Berlin",
        "periods": {"office": {"wednesday": ["08:00-18:00"]}},
        "contacts": {
            "alice": {"email": "alice@example.org", "addresses": {"mattermost": "@alice"}},
            "bob": {"email": "bob@example.org", "period": "office", "service_options": ["critical"]},
            "carol": {"addresses": {"slack": "#carol"}, "host_notifications_enabled": False},
        },
        "groups": {"ops": {"members": ["alice", "bob"]}},
        "policies": {
            "databases": {"hosts": ["db-*"], "services": ["Disk*"], "steps": [OPS_STEP]},
            "db-hosts": {"hosts": ["db-*"], "steps": [OPS_STEP]},
            "manual": {"steps": [{"after": "1m", "notify": ["carol", "alice"], "channels": ["slack", "mattermost"]}]},
        },
    }
)  # fmt: skip


def event(kind: str = "service", notification_type: str = "PROBLEM", **overrides: Any) -> AlertEvent:
    return alert_event(notification_type, kind, "mattermost", **overrides)


def on_host(display_name: str, **more: Any) -> dict[str, Any]:
    return {"host": {"id": "h1", "name": "h1", "display_name": display_name}, **more}


def test_the_first_policy_whose_globs_match_host_and_service_applies() -> None:
    disk = {"service": {"id": "s1", "name": "s1", "display_name": "Disk /var"}}
    assert ROUTING.policy_for(event(**on_host("db-01", **disk))) is ROUTING.policies["databases"]
    load = {"service": {"id": "s2", "name": "s2", "display_name": "Load"}}
    assert ROUTING.policy_for(event(**on_host("db-01", **load))) is ROUTING.policies["db-hosts"]
    assert ROUTING.policy_for(event("host", **on_host("db-01"))) is ROUTING.policies["db-hosts"]
    assert ROUTING.policy_for(event(**on_host("web-01", **disk))) is None


def test_a_policy_without_globs_serves_only_an_explicit_escalation_policy() -> None:
    assert ROUTING.policy_for(event(**on_host("anything"))) is None
    named = event(**on_host("web-01"), escalation={"policy": "manual", "step": 0})
    assert ROUTING.policy_for(named) is ROUTING.policies["manual"]
    unknown = event(**on_host("db-01"), escalation={"policy": "gone", "step": 0})
    assert ROUTING.policy_for(unknown) is None, "an explicit policy wins, even one that does not exist"


def test_a_step_tells_each_member_who_wants_the_state_now_on_each_channel_with_an_address() -> None:
    step = ROUTING.policies["databases"].steps[0]
    critical = event(state=2)
    assert ROUTING.recipients(step, critical, WEDNESDAY_10_BERLIN) == [
        ("alice", "mattermost", "@alice"),
        ("alice", "email", "alice@example.org"),
        ("bob", "email", "bob@example.org"),  # no mattermost address: that channel is left out
    ]
    # Outside bob's period, and a WARNING he does not want: alice alone.
    assert [r[0] for r in ROUTING.recipients(step, critical, WEDNESDAY_22_BERLIN)] == ["alice", "alice"]
    assert {r[0] for r in ROUTING.recipients(step, event(state=1), WEDNESDAY_10_BERLIN)} == {"alice"}


def test_contacts_with_host_notifications_off_hear_nothing_of_hosts() -> None:
    step = ROUTING.policies["manual"].steps[0]
    assert ROUTING.recipients(step, event("host", state=1), WEDNESDAY_10_BERLIN) == [("alice", "mattermost", "@alice")]
    assert ROUTING.recipients(step, event(state=2), WEDNESDAY_10_BERLIN)[0] == ("carol", "slack", "#carol")


@pytest.mark.parametrize(
    ("notification_type", "kind", "state", "option"),
    [
        ("PROBLEM", "service", 1, "warning"),
        ("PROBLEM", "service", 2, "critical"),
        ("PROBLEM", "service", 3, "unknown"),
        ("PROBLEM", "host", 1, "down"),
        ("PROBLEM", "host", 2, "unreachable"),
        ("RECOVERY", "service", 0, "recovery"),
        ("FLAPPINGSTART", "host", 1, "flapping"),
        ("DOWNTIMESTART", "service", 0, "downtime"),
        ("ACKNOWLEDGEMENT", "service", 2, None),
        ("CUSTOM", "host", 2, None),
    ],
)
def test_the_notification_option_an_event_falls_under(
    notification_type: str, kind: str, state: int, option: str | None
) -> None:
    assert state_option(event(kind, notification_type, state=state)) == option
