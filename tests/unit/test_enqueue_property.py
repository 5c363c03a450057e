"""Whatever argv the core passes, alertq-enqueue stores the alert (exit 0) or refuses the call with one
line (exit 2): never a traceback, never exit 1 while the spool is writable.

Hypothesis builds the calls from openITCOCKPIT's two flag sets plus alertq's own flags: values that
fit, bytes that are not UTF-8, huge and empty values, flags without a value, flags given twice,
unknown flags and stray words. The entry point runs in-process (hundreds of calls in seconds); a few
calls also run as the real command with raw bytes in argv, and must behave the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas.alert import AlertEvent
from tests.unit.enqueue_inprocess import InProcessEnqueue, Outcome, argv_text, enqueue_in_process

MATTERMOST_SET: tuple[bytes, ...] = (b"--type", b"--notificationtype", b"--hostuuid", b"--serviceuuid", b"--state")
MATTERMOST_SET += (b"--output", b"--ackauthor", b"--ackcomment")
SLACK_SET: tuple[bytes, ...] = (b"--type", b"--notificationtype", b"--hostname", b"--hostaddress", b"--hoststate")
SLACK_SET += (b"--servicedesc", b"--servicestate", b"--output")
ALERTQ_FLAGS = (
    b"--contact",
    b"--contact-email",
    b"--contact-pager",
    b"--notification-number",
    b"--long-output",
    b"--host-display-name",
    b"--service-display-name",
    b"--timestamp",
    b"--escalation-policy",
    b"--core",
    b"--problem-id",
)
# Not generated: --spool-dir and --config (paths: a random one is another spool, not another call) and
# -h/--help (a request for help, answered with exit 0 and no event).
ALL_FLAGS = (b"--channel", *MATTERMOST_SET, *SLACK_SET, *ALERTQ_FLAGS)

GOOD_VALUES: dict[bytes, list[bytes]] = {
    b"--channel": [b"mattermost", b"slack", b"email", b"webhook"],
    b"--type": [b"Host", b"Service", b"service"],
    b"--notificationtype": [b"PROBLEM", b"RECOVERY", b"ACKNOWLEDGEMENT", b"CUSTOM", b"SOMETHINGNEW"],
    b"--state": [b"0", b"1", b"2", b"3", b"CRITICAL"],
    b"--hoststate": [b"0", b"1", b"2"],
    b"--servicestate": [b"0", b"2", b"3"],
    b"--timestamp": [b"1795800000", b"2026-11-27T10:00:00+01:00"],
    b"--notification-number": [b"1", b"12"],
    b"--problem-id": [b"4711", b"0"],
}
ODD_VALUES = [
    b"",
    b" ",
    b"-",
    b"--output",
    b"--channel=slack",
    b"caf\xe9",
    b"\xff\xfe\xfd",
    b"\xe2\x82",
    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded in UTF-8: not UTF-8
    b"inf",
    b"-inf",
    b"nan",
    b"1e20",
    b"1e18",
    b"99999999999",
    "٢".encode(),
    "²".encode(),
    b"$HOSTSTATEID$",
    b"9" * 5000,
    b"\n\r\t\x1b[31m",
]


def no_nul(raw: bytes) -> bytes:
    return raw.replace(b"\x00", b"")  # argv cannot carry NUL


huge = st.builds(
    lambda unit, n: (unit or b"x") * n, st.binary(min_size=1, max_size=3).map(no_nul), st.integers(1, 40_000)
)


# What makes or breaks a call: a bad one of these is refused (exit 2), so they are mostly good.
IDENTITY_FLAGS = {b"--channel", b"--type", b"--notificationtype", b"--hostuuid", b"--serviceuuid", b"--hostname"}
IDENTITY_FLAGS |= {b"--servicedesc"}
odd_values = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.binary(max_size=40).map(no_nul),
    st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")).map(no_nul),
    huge,
)


@st.composite
def values_for(draw: st.DrawFn, flag: bytes) -> bytes:
    good = GOOD_VALUES.get(flag, [b"web01", b"c36b8048-93ce-4385-ac19-ab5c90574b77", b"1% free"])
    # one_of would pick good and odd about evenly; a call needs every identity flag good to be stored.
    odds = 1 if flag in IDENTITY_FLAGS else 6
    if draw(st.sampled_from(["good"] * 12 + ["odd"] * odds)) == "good":
        return draw(st.sampled_from(good))
    return draw(odd_values)


@st.composite
def flag_items(draw: st.DrawFn, flag: bytes) -> list[bytes]:
    """One flag as it may appear: `--flag value`, `--flag=value`, or (rarely) nothing at all."""
    form = draw(st.sampled_from(["separate"] * 12 + ["inline", "absent"]))
    if form == "absent":
        return []
    value = draw(values_for(flag))
    return [flag + b"=" + value] if form == "inline" else [flag, value]


@st.composite
def calls(draw: st.DrawFn) -> list[bytes]:
    flag_set = draw(st.sampled_from([MATTERMOST_SET, SLACK_SET]))
    argv: list[bytes] = []
    for flag in (b"--channel", *flag_set, *draw(st.lists(st.sampled_from(ALERTQ_FLAGS), max_size=6, unique=True))):
        argv += draw(flag_items(flag))
    # Sometimes disorder: repeated flags (a second --channel is fine, others are refused), unknown flags,
    # stray words, a flag without its value at the end.
    disorder = draw(st.integers(0, 9))
    if disorder >= 7:
        extras = st.one_of(
            st.sampled_from(ALL_FLAGS).flatmap(flag_items),
            st.sampled_from([[b"--colour", b"red"], [b"stray"], [b"-"], [b"-x"], [b"--caf\xe9", b"x"]]),
            st.binary(min_size=1, max_size=10).map(lambda raw: [no_nul(raw) or b"x"]),
        )
        for extra in draw(st.lists(extras, min_size=1, max_size=3)):
            argv[draw(st.integers(0, len(argv))) : 0] = extra
    if disorder == 9:
        argv.append(draw(st.sampled_from(ALL_FLAGS)))
    return argv


@pytest.fixture
def enqueue(tmp_path: Path) -> Iterator[InProcessEnqueue]:
    with enqueue_in_process(tmp_path) as run:
        yield run


def no_surrogates(value: object) -> bool:
    if isinstance(value, str):
        return not any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return all(no_surrogates(k) and no_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return all(no_surrogates(v) for v in value)
    return True


def assert_kept_or_refused(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.stderr
    assert no_surrogates(outcome.stderr)
    if outcome.code == 0:
        assert outcome.bodies, "exit 0 with nothing stored"
        for body in outcome.bodies:
            body.decode("utf-8")  # strict
            AlertEvent.model_validate_json(body)
        assert no_surrogates(outcome.events)
        assert all(line.startswith("alertq-enqueue: warning: ") for line in outcome.lines), outcome.stderr
    else:
        assert outcome.code == 2, f"exit {outcome.code}: {outcome.stderr}"
        assert outcome.bodies == [], "a refused call stores nothing"
        [line] = outcome.lines
        assert line.startswith("alertq-enqueue: error: ")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(argv=calls(), stdin=st.one_of(st.just(b""), st.binary(max_size=200), huge))
def test_any_openitcockpit_call_is_stored_or_refused_with_one_line(
    enqueue: InProcessEnqueue, argv: list[bytes], stdin: bytes
) -> None:
    outcome = enqueue([argv_text(arg) for arg in argv], stdin=stdin)
    event(f"exit {outcome.code}")  # shown by --hypothesis-show-statistics: both ends must be reached
    assert_kept_or_refused(outcome)


# ---- the real command, raw bytes in argv ---------------------------------------------------------------

MM_SERVICE = [b"--channel", b"mattermost", b"--type", b"Service", b"--notificationtype", b"PROBLEM"]
MM_SERVICE += [b"--hostuuid", b"db01", b"--serviceuuid", b"disk", b"--state", b"2", b"--output", b"DISK CRITICAL"]
REAL_CALLS = {
    "latin-1 host": [*MM_SERVICE[:7], b"caf\xe9-db01", *MM_SERVICE[8:]],
    "every text flag latin-1": [
        *MM_SERVICE,
        *(part for flag in ALERTQ_FLAGS[:3] + ALERTQ_FLAGS[4:7] + ALERTQ_FLAGS[8:10] for part in (flag, b"\xe9\xff")),
        b"--ackauthor",
        b"J\xf6rg",
        b"--ackcomment",
        b"\xe9",
    ],
    "slack set, bad state and time": [
        b"--channel=slack",
        b"--type",
        b"Host",
        b"--notificationtype",
        b"RECOVERY",
        b"--hostname",
        b"web\xe901",
        b"--hostaddress",
        b"192.0.2.7",
        b"--hoststate",
        "٢".encode(),
        b"--output",
        b"\xff" * 70_000,
        b"--timestamp",
        b"inf",
        b"--notification-number",
        b"three",
        b"--problem-id",
        b"0",
    ],
    "repeated flag": [*MM_SERVICE, b"--state", b"\xe9"],
    "missing value": [*MM_SERVICE, b"--core"],
    "latin-1 flag name": [*MM_SERVICE, b"--h\xf6st", b"x"],
    "latin-1 channel": [*MM_SERVICE, b"--channel", b"m\xe9"],
}


def comparable(event: dict[str, Any]) -> dict[str, Any]:
    """An event without what differs from call to call."""
    return {k: v for k, v in event.items() if k not in ("event_id", "created_at")}


@pytest.mark.parametrize("name", sorted(REAL_CALLS))
def test_the_real_command_with_raw_bytes_behaves_as_the_entry_point(
    enqueue: InProcessEnqueue, tmp_path: Path, name: str
) -> None:
    argv = REAL_CALLS[name]
    in_process = enqueue([argv_text(arg) for arg in argv])
    assert_kept_or_refused(in_process)

    before = enqueue.stored()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        [os.fsencode(Path(sys.executable).parent / "alertq-enqueue"), *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    new = sorted(enqueue.stored() - before)
    real = Outcome(
        result.returncode, result.stderr.decode("utf-8"), [(enqueue.spool_dir / n).read_bytes() for n in new]
    )
    assert_kept_or_refused(real)
    assert (real.code, real.lines) == (in_process.code, in_process.lines)
    assert [comparable(e) for e in real.events] == [comparable(e) for e in in_process.events]
