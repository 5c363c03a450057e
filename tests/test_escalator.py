"""`alertq escalator` with the real broker, a real webhook worker and endpoint: steps on time, stopped
by acknowledgements and recoveries, repeats capped, contacts' options and periods honoured."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from broker import names
from broker.publisher import ConfirmedPublisher, json_properties
from schemas.ack import AckMessage
from tests.conftest import run
from tests.support import amqp
from tests.support.alert_events import enqueue_latin1_problem
from tests.support.escalation import (
    ROUTING_HEAD,
    EscalatorProcess,
    by_step,
    escalator_env,
    routing_file,
    steps_seen,
    wait_steps,
)
from tests.support.rabbit import free_port
from tests.support.workers import Endpoint, WorkerProcess, event, metric, publish, scrape, webhook_worker_env

ON_TIME = 1.5  # seconds: how close to its due time each step must reach the endpoint

# Steps 2 s apart; repeat 2 retells step 2 twice more: steps 1‥4, then nothing.
TWO_STEPS = """
[policies.web]
hosts = ["web*"]
repeat = 2

[[policies.web.steps]]
after = "2s"
notify = ["alice"]
channels = ["webhook"]

[[policies.web.steps]]
after = "2s"
notify = ["alice", "dba"]
channels = ["webhook"]
"""


@pytest.fixture
def escalation(
    alertq_env: dict[str, str],
    hook: Endpoint,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> Iterator[Callable[..., EscalatorProcess]]:
    """Start a webhook worker and an escalator for the given policies."""
    started: list[EscalatorProcess] = []

    def start(policies: str, head: str = ROUTING_HEAD, **extra: str) -> EscalatorProcess:
        routing = routing_file(tmp_path / "routing.toml", policies, head)
        env = escalator_env(webhook_worker_env(alertq_env, hook), routing, f"sqlite:///{tmp_path}/alertq.db", **extra)
        if not started:
            start_worker(env)
        process = EscalatorProcess(env, tmp_path / f"escalator-{len(started)}.log")
        started.append(process)
        return process.started()

    yield start
    for process in started:
        process.stop_quietly()


def problem(**overrides: Any) -> dict[str, Any]:
    return event(**{"host": {"id": "web01", "name": "web01", "display_name": "web01"}, **overrides})


def follow_up(sent: dict[str, Any], notification_type: str, **overrides: Any) -> dict[str, Any]:
    """Another notification about the same host/service, as the core would send it."""
    return {**event(), **{k: sent[k] for k in ("host", "service")}, "notification_type": notification_type, **overrides}


def test_an_unacknowledged_problem_escalates_step_by_step_on_time_and_the_repeat_stops_at_its_cap(
    escalation: Callable[..., EscalatorProcess], amqp_url: str, hook: Endpoint
) -> None:
    port = free_port()
    escalation(TWO_STEPS, ALERTQ_ESCALATOR__METRICS_PORT=str(port))
    sent = problem()
    opened = datetime.fromisoformat(sent["created_at"])
    publish(amqp_url, [sent])

    seen = wait_steps(hook, 1 + 3 + 3 + 3, timeout=20)
    time.sleep(3)  # a fifth step would be due 2 s after the fourth
    seen = steps_seen(hook)
    assert list(by_step(seen)) == [
        (1, ["alice"]),
        (2, ["alice", "bob", "carol"]),
        (3, ["alice", "bob", "carol"]),
        (4, ["alice", "bob", "carol"]),
    ]
    for step_seen in seen:
        due = opened + timedelta(seconds=2 * step_seen.step)
        lateness = (step_seen.at - due).total_seconds()
        assert -0.2 <= lateness <= ON_TIME, f"step {step_seen.step} to {step_seen.contact}: {lateness:+.2f}s from due"
    first = seen[0].body
    assert first["escalation"]["policy"] == "web"
    assert datetime.fromisoformat(first["escalation"]["since"]) == opened.replace(microsecond=opened.microsecond)
    assert first["output"] == sent["output"] and first["notification_type"] == "PROBLEM"
    assert scrape(port, "/healthz")[0] == 200
    _, metrics = scrape(port)
    assert metric(metrics, "alertq_escalation_steps_total", policy="web") == 4
    assert metric(metrics, "alertq_incidents_opened_total", policy="web") == 1
    assert metric(metrics, "alertq_escalation_notifications_total", channel="webhook") == 10


def publish_ack(url: str, sent: dict[str, Any]) -> None:
    ack = AckMessage(
        ack_id="ack-1",
        received_at=datetime.now(UTC),
        source="mattermost",
        chat_user="alice",
        author="alice via Mattermost",
        comment="on it",
        kind="service",
        host_id=sent["host"]["id"],
        service_id=sent["service"]["id"],
        event_id=sent["event_id"],
    )
    connection = amqp.connect(url)
    try:
        ConfirmedPublisher(connection.channel()).publish(
            names.ACKS_EXCHANGE, "ack.mattermost", ack.to_json(), json_properties(ack.ack_id)
        )
    finally:
        connection.close()


@pytest.mark.parametrize("ending", ["ACKNOWLEDGEMENT", "RECOVERY", "DOWNTIMESTART", "chat ack"])
def test_an_acknowledgement_or_recovery_between_steps_stops_the_next_step(
    escalation: Callable[..., EscalatorProcess], amqp_url: str, hook: Endpoint, ending: str
) -> None:
    escalator = escalation(TWO_STEPS)
    sent = problem()
    publish(amqp_url, [sent])
    assert [s.step for s in wait_steps(hook, 1, timeout=10)] == [1]

    if ending == "chat ack":
        publish_ack(amqp_url, sent)
    else:
        publish(amqp_url, [follow_up(sent, ending, state=0 if ending == "RECOVERY" else 2)])
    escalator.wait_log("escalator.closed", timeout=5)
    time.sleep(3)  # step 2 was due 2 s after step 1
    assert [s.step for s in steps_seen(hook)] == [1]


def test_duplicate_problems_open_one_incident_and_a_problem_after_recovery_opens_a_new_one(
    escalation: Callable[..., EscalatorProcess], amqp_url: str, hook: Endpoint
) -> None:
    escalator = escalation(
        """
[policies.web]
hosts = ["web*"]

[[policies.web.steps]]
after = "1s"
notify = ["alice"]
channels = ["webhook"]
"""
    )
    sent = problem()
    # The core notifies once per contact: three PROBLEMs of one incident.
    publish(amqp_url, [sent, follow_up(sent, "PROBLEM"), follow_up(sent, "PROBLEM")])
    wait_steps(hook, 1, timeout=10)
    time.sleep(1.5)
    assert len(steps_seen(hook)) == 1
    assert len(escalator.events("escalator.opened")) == 1

    publish(amqp_url, [follow_up(sent, "RECOVERY", state=0)])
    escalator.wait_log("escalator.closed", timeout=5)
    publish(amqp_url, [follow_up(sent, "PROBLEM")])
    seen = wait_steps(hook, 2, timeout=10)
    assert [s.step for s in seen] == [1, 1]
    assert len(escalator.events("escalator.opened")) == 2


def test_contacts_outside_their_period_or_with_the_state_switched_off_are_skipped(
    escalation: Callable[..., EscalatorProcess], amqp_url: str, hook: Endpoint
) -> None:
    today = datetime.now(UTC).strftime("%A").lower()
    other_day = (datetime.now(UTC) + timedelta(days=3)).strftime("%A").lower()
    head = f"""
timezone = "UTC"

[periods.not-today]
{other_day} = ["00:00-24:00"]

[periods.today]
{today} = ["00:00-24:00"]

[contacts.alice]
period = "today"
[contacts.alice.addresses]
webhook = "alice"

[contacts.bob]
period = "not-today"
[contacts.bob.addresses]
webhook = "bob"

[contacts.carol]
service_options = ["warning", "unknown", "recovery"]
[contacts.carol.addresses]
webhook = "carol"

[contacts.dave]
service_notifications_enabled = false
[contacts.dave.addresses]
webhook = "dave"
"""
    policies = """
[policies.web]
hosts = ["web*"]

[[policies.web.steps]]
after = "1s"
notify = ["alice", "bob", "carol", "dave"]
channels = ["webhook"]
"""
    escalation(policies, head=head)
    sent = problem(state=2)  # CRITICAL: carol only wants warning/unknown
    publish(amqp_url, [sent])
    seen = wait_steps(hook, 1, timeout=10)
    time.sleep(1.5)
    assert list(by_step(steps_seen(hook))) == [(1, ["alice"])], seen


def test_status_lists_open_incidents_with_their_next_step(
    escalation: Callable[..., EscalatorProcess], amqp_url: str, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    escalator = escalation(TWO_STEPS.replace('after = "2s"', 'after = "1h"', 1))
    publish(amqp_url, [problem()])
    escalator.wait_log("escalator.opened", timeout=10)
    env = {
        **alertq_env,
        "ALERTQ_ROUTING_FILE": str(tmp_path / "routing.toml"),
        "ALERTQ_STATE_STORE": f"sqlite:///{tmp_path}/alertq.db",
    }

    table = run(["alertq", "status"], env)
    as_json = json.loads(run(["alertq", "status", "--json"], env).stdout)

    assert as_json["open_incidents"] == 1
    [incident] = as_json["incidents"]
    assert (incident["name"], incident["policy"], incident["next_step"]) == ("web01/Disk /", "web", 1)
    due_in = datetime.fromisoformat(incident["next_step_due_at"]) - datetime.now(UTC)
    assert timedelta(minutes=59) < due_in <= timedelta(hours=1)
    assert "open incidents: 1" in table.stdout
    row = next(line for line in table.stdout.splitlines() if "web01/Disk /" in line)
    assert re.search(r"\bweb\b.*\b1\b.*in (59|60)m", row), row
    assert as_json["status"] == "OK", as_json["problems"]

    escalator.kill()  # nobody escalates now: a new problem waits in alertq.escalator
    publish(amqp_url, [problem(host={"id": "web02", "name": "web02", "display_name": "web02"})])
    nagios = run(["alertq", "status", "--nagios"], env)
    assert nagios.returncode == 2 and "no escalator" in nagios.stdout, nagios.stdout
    assert "open_incidents=1;;;0" in nagios.stdout


@pytest.mark.parametrize(
    ("core_answer", "steps"),
    [
        ("acknowledged", []),  # acknowledged in the core's UI, never seen by alertq: no step
        ("unacknowledged", [1]),
        ("unreachable", [1]),  # fail open: a missed page is worse than an extra one
    ],
)
def test_with_check_target_the_core_is_asked_before_each_step(
    escalation: Callable[..., EscalatorProcess],
    amqp_url: str,
    hook: Endpoint,
    httpserver: HTTPServer,
    core_answer: str,
    steps: list[int],
) -> None:
    from cores.openitcockpit import SERVICES_INDEX

    if core_answer == "unreachable":
        httpserver.expect_request(SERVICES_INDEX).respond_with_data("maintenance", status=503)
    else:
        status = {"currentState": 2, "problemHasBeenAcknowledged": core_answer == "acknowledged"}
        httpserver.expect_request(
            SERVICES_INDEX, query_string={"angular": "true", "filter[Services.uuid]": "s-uuid"}
        ).respond_with_json({"all_services": [{"Servicestatus": status}]})
    one_step = TWO_STEPS.replace("repeat = 2", "repeat = 0")
    escalator = escalation(
        one_step,
        ALERTQ_ESCALATOR__CHECK_TARGET="true",
        ALERTQ_ACK_TARGET__KIND="openitcockpit",
        ALERTQ_ACK_TARGET__URL=httpserver.url_for("").rstrip("/"),
        ALERTQ_ACK_TARGET__API_KEY="oitc-api-key-secret",
        ALERTQ_ACK_TARGET__TIMEOUT="2",
    )
    publish(amqp_url, [problem()])
    time.sleep(3.5)  # step 1 was due after 2 s
    assert [s.step for s in steps_seen(hook)] == steps
    asked = [request for request, _ in httpserver.log if request.path == SERVICES_INDEX]
    assert asked and asked[0].headers["Authorization"] == "X-OITC-API oitc-api-key-secret"
    if core_answer == "acknowledged":
        [closed] = escalator.events("escalator.closed")
        assert "no unacknowledged problem" in closed["reason"]
    assert "oitc-api-key-secret" not in escalator.text()


def test_escalator_refuses_to_start_with_one_clear_line(alertq_env: dict[str, str], tmp_path: Path) -> None:
    missing = run(["alertq", "escalator"], alertq_env)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "Error: routing_file is not set: the escalator needs contacts and policies "
        "(ALERTQ_ROUTING_FILE=/etc/alertq/routing.toml; example: docs/routing.example.toml)"
    ]

    broken = routing_file(tmp_path / "routing.toml", TWO_STEPS.replace('after = "2s"', 'after = "2 minutes"', 1))
    bad = run(["alertq", "escalator"], {**alertq_env, "ALERTQ_ROUTING_FILE": str(broken)})
    assert bad.returncode == 1
    [line] = bad.stderr.strip().splitlines()
    assert re.fullmatch(rf"Error: {broken}:\d+: policies\.web\.steps\[0\]\.after: not a duration .*", line), line

    good = routing_file(tmp_path / "good.toml", TWO_STEPS)
    store = "postgresql://alertq:pg-secret-pw@127.0.0.1:1/alertq"  # nothing listens on port 1
    unreachable = run(
        ["alertq", "escalator"], {**alertq_env, "ALERTQ_ROUTING_FILE": str(good), "ALERTQ_STATE_STORE": store}
    )
    assert unreachable.returncode == 1
    [line] = unreachable.stderr.strip().splitlines()
    assert line.startswith("Error: state_store postgresql://alertq:***@127.0.0.1:1/alertq: cannot open:"), line
    assert "pg-secret-pw" not in unreachable.stderr + unreachable.stdout


def test_escalation_policy_named_at_enqueue_applies_and_an_unknown_one_is_reported(
    escalation: Callable[..., EscalatorProcess], amqp_url: str, hook: Endpoint
) -> None:
    escalator = escalation(
        """
[policies.pager-only]

[[policies.pager-only.steps]]
after = "1s"
notify = ["carol"]
channels = ["webhook"]
"""
    )
    db = {"id": "db01", "name": "db01", "display_name": "db01"}  # matches no glob: only the name counts
    publish(
        amqp_url,
        [
            event(host=db, escalation={"policy": "pager-only", "step": 0}),
            event(host={**db, "id": "db02"}, escalation={"policy": "no-such-policy", "step": 0}),
            event(host={**db, "id": "db03"}),
        ],
    )
    [seen] = wait_steps(hook, 1, timeout=10)
    assert (seen.key, seen.contact, seen.body["escalation"]["policy"]) == ("db01/s-uuid", "carol", "pager-only")
    [unknown] = escalator.wait_log("escalator.unknown_policy", timeout=5)
    assert (unknown["policy"], unknown["key"]) == ("no-such-policy", "db02/s-uuid")
    time.sleep(1.5)
    assert len(steps_seen(hook)) == 1 and len(escalator.events("escalator.opened")) == 1


LATIN1_CORE = """
[policies.cafe]
hosts = ["caf*"]

[[policies.cafe.steps]]
after = "1s"
notify = ["alice"]
channels = ["webhook"]

[[policies.cafe.steps]]
after = "2s"
notify = ["bob"]
channels = ["webhook"]
"""


def test_latin1_names_from_alertq_enqueue_escalate_and_an_ack_of_them_ends_the_incident(
    escalation: Callable[..., EscalatorProcess], alertq_env: dict[str, str], amqp_url: str, hook: Endpoint
) -> None:
    """Issue 11 item 1: the bytes a Latin-1 core passes are replaced at the door; what is left must not
    trip the escalator either (incident key, state store, its notifications, the ack that ends it)."""
    escalator = escalation(LATIN1_CORE)
    enqueue_latin1_problem("webhook", alertq_env)

    [first] = wait_steps(hook, 1, timeout=10)
    assert (first.key, first.contact, first.step) == ("caf\ufffd-db01/Disque \ufffdtat", "alice", 1)
    assert first.body["escalation"]["policy"] == "cafe" and first.body["output"] == "\ufffdchec: disque plein"
    [opened] = escalator.events("escalator.opened")
    assert opened["key"] == "caf\ufffd-db01/Disque \ufffdtat"

    publish_ack(amqp_url, first.body)  # the chat's ack names the object as the event did
    [closed] = escalator.wait_log("escalator.closed", timeout=5)
    assert closed["key"] == opened["key"]
    time.sleep(3)  # step 2 was due 2 s after step 1
    assert [s.step for s in steps_seen(hook)] == [1]
    assert "Traceback" not in escalator.text()
    assert not [line for line in escalator.lines() if line.get("level") in ("error", "critical")]
