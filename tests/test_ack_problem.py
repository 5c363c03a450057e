"""Is a button's problem still the core's? The verdict (`ack_listener/problem.py`) on what a real Nagios 4
core and a real Icinga 2 report, and on the edge cases of the comparison itself."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ack_listener.problem import Binding, Verdict, judge
from cores.base import ProblemState
from cores.nagios import NagiosCommandFile
from schemas.ack_listener import AckTargetSettings
from tests.support.icinga import Icinga2Core
from tests.support.nagios import NagiosCore
from tests.test_ack_target_state import icinga2_target

SINCE = 1_800_000_000.0


def state(**fields: object) -> ProblemState:
    values: dict[str, object] = {"state": 2, "acknowledged": False, "problem_id": None, "last_ok": None, "as_of": None}
    values.update(fields)
    return ProblemState(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("binding", "core", "verdict"),
    [
        (Binding("7", SINCE), state(problem_id="7", last_ok=SINCE - 60), Verdict.CURRENT),
        (Binding("7", SINCE), state(problem_id="7", acknowledged=True), Verdict.ACKNOWLEDGED),
        (Binding("7", SINCE), state(problem_id="9", last_ok=SINCE - 60), Verdict.EARLIER),
        # The id decides when both sides have one, even against the clock.
        (Binding("7", SINCE), state(problem_id="7", last_ok=SINCE + 60), Verdict.CURRENT),
        (Binding("7", SINCE), state(state=0, problem_id=None), Verdict.RECOVERED),
        # No id on one side: seen OK after the button was issued means a later problem.
        (Binding(None, SINCE), state(last_ok=SINCE + 5), Verdict.EARLIER),
        (Binding("7", SINCE), state(last_ok=SINCE + 5), Verdict.EARLIER),
        (Binding(None, SINCE), state(last_ok=SINCE - 5), Verdict.CURRENT),
        (Binding(None, SINCE + 0.9), state(last_ok=SINCE), Verdict.CURRENT),  # the same second: the same problem
        (Binding(None, SINCE), state(last_ok=None), Verdict.CURRENT),  # never seen OK
        # The core's view is older than the button (status.dat is rewritten every few seconds).
        (Binding(None, SINCE), state(state=0, as_of=SINCE - 3), Verdict.UNKNOWN),
        (Binding(None, SINCE + 0.2), state(state=0, as_of=SINCE + 0.7), Verdict.UNKNOWN),  # written that second
        (Binding(None, SINCE), state(state=0, as_of=SINCE + 3), Verdict.RECOVERED),
        (Binding(None, SINCE), None, Verdict.UNKNOWN),  # cannot tell: fail open
        (Binding(None, None), state(state=0), Verdict.UNKNOWN),  # a button that names no problem: no check
    ],
)
def test_verdicts(binding: Binding, core: ProblemState | None, verdict: Verdict) -> None:
    assert judge(binding, core) is verdict


def test_nagios_a_button_stays_good_through_critical_to_warning_and_ends_with_the_recovery(
    nagios_core_factory: Callable[..., NagiosCore],
) -> None:
    core = nagios_core_factory(hosts={"web01": ["disk"]})
    target = NagiosCommandFile(AckTargetSettings(command_file=core.command_file, status_file=core.status_file))

    def after(command: Callable[[], None], check: Callable[[ProblemState], bool]) -> tuple[ProblemState, float]:
        """Run a command; when the core had processed it (when it notifies: a button made for that
        notification is bound to this time), and the state as the core wrote it after that moment."""
        command()
        core.wait_for(lambda: (found := target.problem_state("web01", "disk")) is not None and check(found))
        processed = time.time()
        # Written in a later whole second: the verdict compares whole seconds (the token keeps seconds),
        # and a file of the same second may predate the notification, so it would rightly say "unknown".
        written = core.wait_for(
            lambda: (
                (found := target.problem_state("web01", "disk")) and int(found.as_of or 0) > int(processed) and found
            ),
            what="status.dat rewritten",
        )
        return written, processed

    after(lambda: core.set_service_state("web01", "disk", "OK", "DISK OK"), lambda s: s.last_ok is not None)
    time.sleep(1.1)  # the PROBLEM in a later second than the last OK, as checks minutes apart are
    critical, notified = after(
        lambda: core.set_service_state("web01", "disk", "CRITICAL", "DISK CRITICAL"), lambda s: s.state == 2
    )
    assert critical.problem_id is not None and critical.last_ok is not None
    by_id, by_time = Binding(critical.problem_id, notified), Binding(None, notified)
    assert judge(by_id, critical) is judge(by_time, critical) is Verdict.CURRENT

    # CRITICAL → WARNING moves the core's last hard state change, but it is the same problem.
    warning, _ = after(
        lambda: core.set_service_state("web01", "disk", "WARNING", "DISK WARNING"), lambda s: s.state == 1
    )
    assert warning.problem_id == critical.problem_id
    assert judge(by_id, warning) is judge(by_time, warning) is Verdict.CURRENT

    time.sleep(1.1)
    recovered, _ = after(lambda: core.set_service_state("web01", "disk", "OK", "DISK OK"), lambda s: s.state == 0)
    assert judge(by_id, recovered) is judge(by_time, recovered) is Verdict.RECOVERED

    time.sleep(1.1)
    again, _ = after(
        lambda: core.set_service_state("web01", "disk", "CRITICAL", "DISK CRITICAL"), lambda s: s.state == 2
    )
    assert again.problem_id != critical.problem_id
    assert judge(by_id, again) is judge(by_time, again) is Verdict.EARLIER


def test_icinga2_reports_when_it_last_saw_the_service_ok(icinga2_core: Icinga2Core) -> None:
    target = icinga2_target(icinga2_core)
    icinga2_core.set_service_state("web01", "disk", 0, "DISK OK")
    time.sleep(1.1)
    icinga2_core.set_service_state("web01", "disk", 2, "DISK CRITICAL")
    critical = target.problem_state("web01", "disk")
    assert critical is not None and critical.state == 2 and critical.last_ok is not None
    assert critical.problem_id is None  # Icinga 2 keeps none: the time decides
    notified = time.time()
    assert judge(Binding(None, notified), critical) is Verdict.CURRENT

    time.sleep(1.1)
    icinga2_core.set_service_state("web01", "disk", 0, "DISK OK")
    time.sleep(1.1)
    icinga2_core.set_service_state("web01", "disk", 2, "DISK CRITICAL again")
    assert judge(Binding(None, notified), target.problem_state("web01", "disk")) is Verdict.EARLIER
