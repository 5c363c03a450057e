"""A few calls as the real alertq-enqueue command with raw bytes in argv (as a core with Latin-1 object
names passes them) behave exactly as the entry point called in-process, which
tests/unit/test_enqueue_property.py drives with hundreds of generated calls."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.enqueue_inprocess import InProcessEnqueue, Outcome, argv_text, enqueue_in_process
from tests.unit.test_enqueue_property import ALERTQ_FLAGS, assert_kept_or_refused


@pytest.fixture
def enqueue(tmp_path: Path) -> Iterator[InProcessEnqueue]:
    with enqueue_in_process(tmp_path) as call:
        yield call


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
