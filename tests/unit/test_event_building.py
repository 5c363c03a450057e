"""`alertq-enqueue`'s flags → `alertq.alert/1` events (producer/flags.py, producer/event.py)."""

from __future__ import annotations

import pytest

from producer import event as event_builder
from producer import flags as cli_flags
from producer.flags import UsageError
from schemas.alert import AlertEvent

HOST = "c36b8048-93ce-4385-ac19-ab5c90574b77"
SERVICE = "74fd8f59-1348-4e16-85f0-4a5c57c7dd62"


def build(*argv: str) -> list[dict[str, object]]:
    parsed = cli_flags.parse(list(argv))
    assert parsed is not None
    return event_builder.build_events(parsed)


def service_problem(*more: str) -> list[dict[str, object]]:
    return build(
        "--type", "Service", "--notificationtype", "PROBLEM", "--hostuuid", HOST, "--serviceuuid", SERVICE,
        "--state", "2", "--output", "DISK CRITICAL", *more,
    )  # fmt: skip


def test_one_event_per_channel_alike_but_for_channel_and_id() -> None:
    events = service_problem("--channel", "mattermost", "--channel", "email")
    assert [e["channel"] for e in events] == ["mattermost", "email"]
    assert events[0]["event_id"] != events[1]["event_id"]
    same = {k: v for k, v in events[0].items() if k not in ("channel", "event_id")}
    assert same == {k: v for k, v in events[1].items() if k not in ("channel", "event_id")}
    for event in events:
        AlertEvent.model_validate(event)  # what the readers accept


def test_a_service_event_carries_what_the_core_said() -> None:
    [event] = service_problem("--channel", "webhook", "--timestamp", "1764235800", "--escalation-policy", "db")
    parsed = AlertEvent.model_validate(event)
    assert (parsed.kind, parsed.notification_type, parsed.state) == ("service", "PROBLEM", 2)
    assert parsed.host.id == HOST and parsed.service is not None and parsed.service.id == SERVICE
    assert parsed.output == "DISK CRITICAL"
    assert parsed.created_at.isoformat() == "2025-11-27T09:30:00+00:00"
    assert parsed.escalation is not None and (parsed.escalation.policy, parsed.escalation.step) == ("db", 0)


@pytest.mark.parametrize(("state", "number"), [("CRITICAL", 2), ("critical", 2), ("3", 3), ("OK", 0)])
def test_service_states_by_name_or_number(state: str, number: int) -> None:
    events = build(
        "--channel", "slack", "--type", "Service", "--notificationtype", "PROBLEM", "--hostname", "web01",
        "--servicedesc", "Disk", "--servicestate", state,
    )  # fmt: skip
    assert events[0]["state"] == number


def test_the_slack_module_flag_set_names_host_and_service() -> None:
    [event] = build(
        "--channel", "slack", "--type", "Host", "--notificationtype", "RECOVERY", "--hostname", "web01",
        "--hostaddress", "10.0.0.11", "--hoststate", "UP",
    )  # fmt: skip
    parsed = AlertEvent.model_validate(event)
    assert (parsed.host.id, parsed.host.address, parsed.state, parsed.service) == ("web01", "10.0.0.11", 0, None)


def test_output_that_looks_like_a_flag_is_output() -> None:
    [event] = service_problem("--channel", "webhook", "--long-output", "--- details ---")
    assert event["long_output"] == "--- details ---"


def test_long_output_is_cut_at_64_kib_on_a_character_boundary_with_a_marker() -> None:
    text = "ä" * 40_000  # two bytes each: 80,000 bytes
    cut = event_builder.clean_text(text)
    assert len(cut.encode()) <= event_builder.TEXT_LIMIT
    assert cut.startswith("ä" * 1000) and "cut at 64 KiB" in cut
    assert "\ufffd" not in cut


HOST_PROBLEM = ["--type", "Host", "--notificationtype", "PROBLEM", "--hostname", "h", "--state", "1"]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (HOST_PROBLEM, "--channel"),
        (["--channel", "Bad Name", *HOST_PROBLEM], "--channel"),
        (["--channel", "slack", *HOST_PROBLEM[2:]], "--type"),
        (["--channel", "slack", *HOST_PROBLEM[:4], *HOST_PROBLEM[6:]], "--hostuuid"),
        (["--channel", "slack", *HOST_PROBLEM[:6]], "--state"),
    ],
)
def test_a_bad_invocation_names_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        build(*argv)
