"""alertq-enqueue keeps the alert whatever the core puts in a flag: bytes that are not UTF-8, a time or
a state it cannot use. Called in-process with no broker, so an accepted event is found in the spool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.alert import AlertEvent
from tests.unit.enqueue_inprocess import InProcessEnqueue, Outcome, argv_text, enqueue_in_process

SERVICE_CALL = {
    "--channel": "mattermost",
    "--type": "Service",
    "--notificationtype": "PROBLEM",
    "--hostuuid": "db01",
    "--serviceuuid": "disk",
    "--state": "2",
    "--output": "DISK CRITICAL",
}
HOST_CALL = {
    "--channel": "mattermost",
    "--type": "Host",
    "--notificationtype": "PROBLEM",
    "--hostuuid": "db01",
    "--state": "1",
}
LATIN1 = b"caf\xe9 \xff"  # what a core with Latin-1 object names passes: not UTF-8
REPLACED = "caf\ufffd \ufffd"


@pytest.fixture
def enqueue(tmp_path: Path) -> Iterator[InProcessEnqueue]:
    with enqueue_in_process(tmp_path) as run:
        yield run


def argv(base: dict[str, str], **changes: str) -> list[str]:
    """`base` with flags changed or added (`changes` keys: the flag without dashes, _ for -)."""
    flags = dict(base)
    flags.update({f"--{k.replace('_', '-')}": v for k, v in changes.items()})
    return [part for pair in flags.items() for part in pair]


def accepted(outcome: Outcome) -> AlertEvent:
    """The one event an accepted call stored; it is valid UTF-8 and valid alertq.alert/1."""
    assert outcome.code == 0, outcome.stderr
    [body] = outcome.bodies
    body.decode("utf-8")  # strict: a surrogate or a stray byte would fail here
    return AlertEvent.model_validate_json(body)


def no_surrogates(value: object) -> bool:
    if isinstance(value, str):
        return not any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return all(no_surrogates(k) and no_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return all(no_surrogates(v) for v in value)
    return True


# ---- item 1: bytes that are not UTF-8, in any flag -----------------------------------------------------

# flag -> where the value ends up in the event
TEXT_FLAGS = {
    "hostuuid": ("host", "id"),
    "serviceuuid": ("service", "id"),
    "notificationtype": ("notification_type",),
    "hostaddress": ("host", "address"),
    "contact": ("contact", "name"),
    "contact_email": ("contact", "email"),
    "contact_pager": ("contact", "pager"),
    "core": ("source", "core"),
    "escalation_policy": ("escalation", "policy"),
    "host_display_name": ("host", "display_name"),
    "service_display_name": ("service", "display_name"),
    "ackauthor": ("ack", "author"),
    "ackcomment": ("ack", "comment"),
    "output": ("output",),
    "long_output": ("long_output",),
}


@pytest.mark.parametrize("flag", sorted(TEXT_FLAGS))
def test_invalid_utf8_in_any_flag_is_kept_with_the_bytes_replaced(enqueue: InProcessEnqueue, flag: str) -> None:
    outcome = enqueue(argv(SERVICE_CALL, **{flag: argv_text(LATIN1)}))
    event = accepted(outcome)
    value: object = json.loads(event.to_json())
    for key in TEXT_FLAGS[flag]:
        assert isinstance(value, dict)
        value = value[key]
    assert value == REPLACED
    assert outcome.warnings == []


@pytest.mark.parametrize("flag", ["hostname", "servicedesc"])
def test_invalid_utf8_in_the_slack_flag_set_is_kept(enqueue: InProcessEnqueue, flag: str) -> None:
    call = {k: v for k, v in SERVICE_CALL.items() if k not in ("--hostuuid", "--serviceuuid")}
    call |= {"--hostname": "web01", "--servicedesc": "HTTP", f"--{flag}": argv_text(LATIN1)}
    event = accepted(enqueue(argv(call)))
    assert event.service is not None
    assert (event.host.id if flag == "hostname" else event.service.id) == REPLACED


def test_nothing_in_a_stored_event_is_a_surrogate(enqueue: InProcessEnqueue) -> None:
    everything = {f"--{flag.replace('_', '-')}": argv_text(LATIN1 + b"\x80\xc3") for flag in TEXT_FLAGS}
    outcome = enqueue(argv(SERVICE_CALL | everything, channel="webhook", timestamp="1795800000"))
    event = accepted(outcome)
    assert no_surrogates(json.loads(outcome.bodies[0]))
    assert event.host.id == "caf\ufffd \ufffd\ufffd\ufffd"


def test_invalid_utf8_in_a_flag_name_or_a_channel_is_one_line_exit_2(enqueue: InProcessEnqueue) -> None:
    for call in (
        [*argv(SERVICE_CALL), argv_text(b"--caf\xe9"), "x"],
        argv(SERVICE_CALL, channel=argv_text(b"mattermost\xe9")),
        argv(SERVICE_CALL, type=argv_text(b"Servic\xe9")),
    ):
        outcome = enqueue(call)
        assert outcome.code == 2 and outcome.bodies == []
        [line] = outcome.lines
        assert line.startswith("alertq-enqueue: error: ") and "\ufffd" in line


# ---- item 2: --timestamp -------------------------------------------------------------------------------

BAD_TIMESTAMPS = [
    "inf",
    "-inf",
    "nan",
    "1e20",
    "1e18",
    "99999999999",  # year 5138
    "-1",
    "946684799",  # a second before 2000
    "9999-12-31T23:59:59-05:00",  # past year 9999 in UTC
    "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
    "2999-01-01T00:00:00Z",
    "yesterday",
    "١٧٩٥٨٠٠٠٠٠",  # Arabic-Indic digits: float() reads them, no core sends them
    " ",
]


@pytest.mark.parametrize("value", BAD_TIMESTAMPS)
def test_an_unusable_timestamp_becomes_the_time_of_receipt_with_one_warning(
    enqueue: InProcessEnqueue, value: str
) -> None:
    before = datetime.now(UTC)
    outcome = enqueue(argv(SERVICE_CALL, timestamp=value))
    event = accepted(outcome)
    assert before <= event.created_at <= datetime.now(UTC)
    if value.strip():
        [warning] = outcome.warnings
        assert warning.startswith("alertq-enqueue: warning: --timestamp: ")
        assert repr(value) in warning and "time of receipt" in warning
    else:
        assert outcome.warnings == [], "an empty --timestamp means now, as documented"


def test_a_timestamp_more_than_a_day_ahead_is_replaced_and_one_within_the_day_kept(enqueue: InProcessEnqueue) -> None:
    now = datetime.now(UTC)
    soon, far = now + timedelta(hours=23), now + timedelta(hours=25)
    assert accepted(enqueue(argv(SERVICE_CALL, timestamp=str(int(soon.timestamp()))))).created_at == soon.replace(
        microsecond=0
    )
    outcome = enqueue(argv(SERVICE_CALL, timestamp=far.isoformat()))
    assert accepted(outcome).created_at < far - timedelta(hours=24)
    assert len(outcome.warnings) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1795800000", datetime.fromtimestamp(1795800000, UTC)),
        ("1795800000.5", datetime.fromtimestamp(1795800000.5, UTC)),
        ("2026-11-27T10:00:00+02:00", datetime(2026, 11, 27, 8, 0, tzinfo=UTC)),
        ("2026-11-27T10:00:00", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        ("946684800", datetime(2000, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_plausible_timestamp_is_kept_as_given(enqueue: InProcessEnqueue, value: str, expected: datetime) -> None:
    if expected > datetime.now(UTC):
        pytest.skip("this machine's clock is before the example time")
    outcome = enqueue(argv(SERVICE_CALL, timestamp=value))
    assert accepted(outcome).created_at == expected
    assert outcome.warnings == []


# ---- item 2: --state -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "service_state", "host_state"),
    [("2", 2, 2), (" 1 ", 1, 1), ("critical", 2, None), ("UNREACHABLE", None, 2), ("0", 0, 0), ("3", 3, None)],
)
def test_states_by_number_or_name(
    enqueue: InProcessEnqueue, value: str, service_state: int | None, host_state: int | None
) -> None:
    for call, expected in ((SERVICE_CALL, service_state), (HOST_CALL, host_state)):
        if expected is None:
            continue
        outcome = enqueue(argv(call, state=value))
        assert accepted(outcome).state == expected
        assert outcome.warnings == []


@pytest.mark.parametrize(
    "value", ["٢", "²", "7", "-1", "$SERVICESTATEID$", "", "2.0", argv_text(b"\xe9"), "9" * 5000, "0" * 5000]
)
def test_a_state_that_is_none_is_sent_as_unknown_or_down_with_one_warning(
    enqueue: InProcessEnqueue, value: str
) -> None:
    """Only ASCII digits are numbers: "٢" (Arabic-Indic two) and "²" are treated like an unknown name."""
    for call, expected, name in ((SERVICE_CALL, 3, "UNKNOWN"), (HOST_CALL, 1, "DOWN")):
        outcome = enqueue(argv(call, state=value))
        assert accepted(outcome).state == expected
        [warning] = outcome.warnings
        assert warning.startswith("alertq-enqueue: warning: --state: ") and warning.endswith(f"sent as {name}")


def test_a_recovery_without_a_usable_state_is_sent_as_ok_or_up(enqueue: InProcessEnqueue) -> None:
    """The core sends a RECOVERY only for OK/UP: saying "UNKNOWN" or "DOWN" there would be wrong."""
    for call, name in ((SERVICE_CALL, "OK"), (HOST_CALL, "UP")):
        outcome = enqueue(argv(call, notificationtype="RECOVERY", state="$SERVICESTATEID$"))
        assert accepted(outcome).state == 0
        [warning] = outcome.warnings
        assert warning.endswith(f"sent as {name}")


def test_a_usable_state_in_the_other_flag_set_wins_over_a_bad_one(enqueue: InProcessEnqueue) -> None:
    outcome = enqueue(argv(SERVICE_CALL, state="$SERVICESTATEID$", servicestate="1"))
    assert accepted(outcome).state == 1 and outcome.warnings == []


def test_no_state_flag_at_all_is_still_a_bad_invocation(enqueue: InProcessEnqueue) -> None:
    outcome = enqueue([part for pair in SERVICE_CALL.items() if pair[0] != "--state" for part in pair])
    assert outcome.code == 2 and outcome.bodies == []
    [line] = outcome.lines
    assert "--state is required" in line


# ---- --notification-number ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["three", "٣", "-1", "1e3", "9" * 5000, str(2**31)])
def test_a_bad_notification_number_is_left_out_with_one_warning(enqueue: InProcessEnqueue, value: str) -> None:
    outcome = enqueue(argv(SERVICE_CALL, notification_number=value))
    assert accepted(outcome).notification_number is None
    [warning] = outcome.warnings
    assert "--notification-number" in warning


# ---- item 4: --problem-id ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("4711", "4711"), (" 12 ", "12"), ("0", None), ("", None)])
def test_problem_id_is_stored_and_0_or_empty_mean_none(
    enqueue: InProcessEnqueue, value: str, expected: str | None
) -> None:
    outcome = enqueue(argv(SERVICE_CALL, problem_id=value))
    assert accepted(outcome).problem_id == expected
    assert outcome.warnings == []


def test_no_problem_id_flag_means_none(enqueue: InProcessEnqueue) -> None:
    assert accepted(enqueue(argv(SERVICE_CALL))).problem_id is None


@pytest.mark.parametrize("value", ["$SERVICEPROBLEMID$", "12 13", "x" * 65, argv_text(b"1\xe9")])
def test_a_problem_id_that_is_none_is_left_out_with_one_warning(enqueue: InProcessEnqueue, value: str) -> None:
    outcome = enqueue(argv(SERVICE_CALL, problem_id=value))
    assert accepted(outcome).problem_id is None
    [warning] = outcome.warnings
    assert "--problem-id" in warning
