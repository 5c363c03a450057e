"""`alertq status` as an SRE and as Nagios run it: real processes, the real broker."""

from __future__ import annotations

import json
import re
import time

from broker import names, topology
from broker.publisher import ConfirmedPublisher, json_properties
from tests.conftest import run
from tests.support import amqp
from tests.support.amqp import connect
from tests.support.dead_letters import Spec, publish

NAGIOS_LINE = re.compile(r"^ALERTQ (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| (\S+=\S+ ?)+$")


def status(env, *args: str):
    return run(["alertq", "status", *args], env)


def test_all_quiet_is_ok(declared, alertq_env):
    table = status(alertq_env)
    as_json = json.loads(status(alertq_env, "--json").stdout)
    nagios = status(alertq_env, "--nagios")

    assert table.returncode == 0, table.stdout + table.stderr
    assert "alertq.notify.slack" in table.stdout and "status: OK" in table.stdout
    assert "open incidents: n/a (no routing_file: escalation is off)" in table.stdout.splitlines()
    assert as_json["status"] == "OK" and as_json["dead_letters"]["total"] == 0
    assert {q["channel"] for q in as_json["queues"] if q["channel"]} == set(declared.channels.enabled_names())
    assert as_json["open_incidents"] is None and as_json["incidents"] is None  # escalation is off
    assert nagios.returncode == 0
    assert NAGIOS_LINE.match(nagios.stdout.strip()), nagios.stdout
    assert "open_incidents" not in nagios.stdout  # no made-up zero in the perfdata


def test_dead_letters_are_a_warning_broken_down_by_reason(declared, amqp_url, alertq_env):
    publish(amqp_url, [Spec("slack", "permanent"), Spec("slack", "permanent"), Spec("email", "delivery-limit")])

    as_json = status(alertq_env, "--json")
    nagios = status(alertq_env, "--nagios")

    assert as_json.returncode == 1
    dead = json.loads(as_json.stdout)["dead_letters"]
    assert dead == {"total": 3, "by_reason": {"permanent": 2, "delivery-limit": 1}, "by_reason_examined": 3}
    assert nagios.returncode == 1
    assert nagios.stdout.startswith("ALERTQ WARNING - 3 dead letters")
    assert "dead_letters=3;1;;0" in nagios.stdout


def test_messages_without_a_consumer_are_critical(settings, amqp_url, alertq_env):
    topology.declare_with(settings, "tests")  # as the processes declare it: escalation is off
    connection = connect(amqp_url)
    ConfirmedPublisher(connection.channel()).publish(
        names.EVENTS_EXCHANGE, names.notify_key("email"), b"{}", json_properties("e1")
    )
    connection.close()

    result = status(alertq_env, "--nagios")

    assert result.returncode == 2
    assert result.stdout.startswith("ALERTQ CRITICAL - 1 messages in alertq.notify.email and no consumer")
    assert "queue_email=1;;;0" in result.stdout

    # a consumer on the queue makes it fine again
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(names.notify_queue("email"), lambda *a: None)
    connection.process_data_events(time_limit=0.5)
    try:
        assert status(alertq_env, "--nagios").returncode == 0
    finally:
        connection.close()


def test_any_other_queue_holding_messages_nobody_consumes_is_a_warning_naming_it(settings, amqp_url, alertq_env):
    """alertq.escalator left bound from when escalation was on (or an escalator that is gone) collects a
    copy of every notification; status said OK while it grew toward RabbitMQ's memory alarm."""
    topology.declare_with(settings, "tests", escalation=True, delays=settings.retry.delays)
    connection = connect(amqp_url)
    publisher = ConfirmedPublisher(connection.channel())
    for n in range(3):
        publisher.publish(names.EVENTS_EXCHANGE, names.notify_key("email"), b"{}", json_properties(f"e{n}"))
    # A retry waiting out its delay: delay queues have no consumer by design, never a warning.
    publisher.publish(
        names.DELAY_EXCHANGE,
        names.retry_key("email"),
        b"{}",
        json_properties("r1", {names.HEADER_DELAY: str(max(settings.retry.delays))}),
    )
    connection.close()
    assert len(amqp.take(amqp_url, names.notify_queue("email"), 3)) == 3  # the channel got them all

    nagios = status(alertq_env, "--nagios")
    table = status(alertq_env)
    problems = json.loads(status(alertq_env, "--json").stdout)["problems"]

    assert nagios.returncode == 1, nagios.stdout
    assert nagios.stdout.startswith("ALERTQ WARNING - 3 messages in alertq.escalator and no consumer ("), nagios.stdout
    assert NAGIOS_LINE.match(nagios.stdout.strip()), nagios.stdout
    assert table.returncode == 1 and "WARNING: 3 messages in alertq.escalator and no consumer" in table.stdout
    assert [p["text"].split(" (")[0] for p in problems] == ["3 messages in alertq.escalator and no consumer"]
    assert "topology declare" in problems[0]["text"]  # what to do about it

    # Acks nobody forwards are the same story; the escalator's copies gone, that is the one left.
    connection = connect(amqp_url)
    channel = connection.channel()
    ConfirmedPublisher(channel).publish(names.ACKS_EXCHANGE, "ack.slack", b"{}", json_properties("a1"))
    channel.queue_purge(names.ESCALATOR_QUEUE)
    connection.close()
    nagios = status(alertq_env, "--nagios")
    assert nagios.returncode == 1
    assert nagios.stdout.startswith("ALERTQ WARNING - 1 messages in alertq.acks and no consumer"), nagios.stdout


def test_old_spool_backlog_is_critical(declared, alertq_env, tmp_path):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir(exist_ok=True)
    (spool_dir / f"{time.time_ns() - 300 * 10**9:020d}-1-abcd.json").write_text("{}")
    (spool_dir / f"{time.time_ns():020d}-1-abce.json").write_text("{}")

    fresh_enough = status(alertq_env, "--json", "--spool-max-age", "600")
    too_old = status(alertq_env, "--json", "--spool-max-age", "60")

    assert fresh_enough.returncode == 0
    assert json.loads(fresh_enough.stdout)["spool"]["backlog"] == 2
    assert too_old.returncode == 2
    assert "is the relay running?" in json.loads(too_old.stdout)["problems"][0]["text"]


def test_unreachable_broker_is_critical_without_leaking_the_password(alertq_env):
    env = {
        **alertq_env,
        "ALERTQ_BROKER__URLS": "amqp://alertq:s3cret-pw@127.0.0.1:1/",
        "ALERTQ_BROKER__CONNECT_TIMEOUT": "1",
    }

    nagios = status(env, "--nagios")
    table = status(env)

    assert nagios.returncode == 2
    assert nagios.stdout.startswith("ALERTQ CRITICAL - broker unreachable")
    assert table.returncode == 2
    assert "s3cret-pw" not in nagios.stdout + nagios.stderr + table.stdout + table.stderr


def test_missing_topology_is_critical(alertq_env):
    result = status(alertq_env, "--json")
    assert result.returncode == 2
    assert any("topology declare" in p["text"] for p in json.loads(result.stdout)["problems"])


def test_bad_settings_are_unknown_for_nagios(alertq_env):
    result = status({**alertq_env, "ALERTQ_BROKER__HEARTBEAT": "-5"}, "--nagios")
    assert result.returncode == 3
    assert result.stdout.startswith("ALERTQ UNKNOWN - invalid settings")
