"""`alertq status --nagios` as a Nagios check: the real Nagios 4 core runs it as an active service check,
as its own user with its clean environment and the settings file on the command line, and records the
result in status.dat like any plugin's."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from schemas.settings import Settings
from tests.conftest import run
from tests.support import dead_letters
from tests.support.nagios import VENV_BIN, NagiosCore
from tests.support.workers import event, publish

pytestmark = pytest.mark.nagios

HOST, SERVICE = "mq01", "alertq"
CLEAN_ENV = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8"}  # the settings come from --config


def forced_check(core: NagiosCore, expect: str) -> dict[str, str]:
    """Make the core run the check now; its service status once a result newer than the request starts
    with `expect`."""
    asked = int(time.time())
    core.submit(f"SCHEDULE_FORCED_SVC_CHECK;{HOST};{SERVICE};{asked}")

    def result() -> dict[str, str] | None:
        service = core.status().service(HOST, SERVICE)
        fresh = service["has_been_checked"] == "1" and int(service["last_check"]) >= asked
        return service if fresh and service["plugin_output"].startswith(expect) else None

    found: dict[str, str] = core.wait_for(result, 90, f"a check result starting {expect!r}")
    return found


def test_the_core_runs_alertq_status_as_a_check_ok_warning_critical_with_perfdata(
    declared: Settings, amqp_url: str, nagios_core_factory: Callable[..., NagiosCore]
) -> None:
    core = nagios_core_factory(hosts={HOST: []}, alertq_checks={(HOST, SERVICE): "status --nagios"})
    same_check = ["alertq", "--config", str(core.alertq_config), "status", "--nagios"]
    channels = declared.channels.enabled_names()

    clean = forced_check(core, "ALERTQ ")
    direct = run(same_check, CLEAN_ENV)
    assert clean["plugin_output"] == f"ALERTQ OK - {len(channels)} channels delivering, no dead letters"
    assert (clean["current_state"], clean["check_type"]) == ("0", "0")  # OK, from an active check
    assert direct.returncode == 0 and direct.stdout.startswith("ALERTQ OK - ")
    perfdata = clean["performance_data"].split()
    assert "dead_letters=0;1;;0" in perfdata and "spool_backlog=0;;;0" in perfdata
    for channel in channels:
        assert f"queue_{channel}=0;;;0" in perfdata and f"consumers_{channel}=0;;;0" in perfdata

    dead_letters.publish(amqp_url, [dead_letters.Spec("webhook", "permanent")])

    warning = forced_check(core, "ALERTQ WARNING")
    direct = run(same_check, CLEAN_ENV)
    assert warning["plugin_output"] == "ALERTQ WARNING - 1 dead letters (alertq dlq list)"
    assert warning["current_state"] == "1" == str(direct.returncode)
    assert warning["state_type"] == "1"  # HARD: max_check_attempts 1
    assert "dead_letters=1;1;;0" in warning["performance_data"].split()

    # Work piling up with nobody delivering it is CRITICAL.
    publish(amqp_url, [event("email")], channel="email")
    critical = forced_check(core, "ALERTQ CRITICAL")
    assert critical["plugin_output"] == "ALERTQ CRITICAL - 1 messages in alertq.notify.email and no consumer"
    assert critical["current_state"] == "2"
    assert "queue_email=1;;;0" in critical["performance_data"].split()
    assert core.notifications("SERVICE") == []  # the check's service does not notify
