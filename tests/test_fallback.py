"""Fallback when a channel gives up (`channels.<name>.fallback`, workers/fallback.py), end to end: real
workers on the real broker, `alertq sink` as the Slack Web API (answering `channel_not_found` for the
configured channel) and as the SMTP server, the notification enqueued as openITCOCKPIT's Slack command
runs `alertq-enqueue`, the dead letter replayed with `alertq dlq replay`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker import names
from tests.conftest import run
from tests.support import amqp
from tests.support.conversations import SLACK_CHANNEL, Service, api_env, command_line, enqueue_all, sqlite_store
from tests.support.rabbit import free_port
from tests.support.sink import Sink, sinks
from tests.support.workers import WorkerProcess, metric, queue_counts, scrape

CRITICAL = "DISK CRITICAL - free space: / 120 MB (1%)"
ONCALL = "oncall@example.org"


def mails(sink: Sink) -> list[dict[str, Any]]:
    return [m["payload"] for m in sink.messages(channel="email")]


def wait_mails(sink: Sink, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(found := mails(sink)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def fallback_env(base: dict[str, str], sink: Sink, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Slack in API mode against the sink, falling back to e-mail at the sink's SMTP server."""
    email = {
        "ALERTQ_CHANNELS__SLACK__FALLBACK": "email",
        "ALERTQ_CHANNELS__EMAIL__HOST": "127.0.0.1",
        "ALERTQ_CHANNELS__EMAIL__PORT": str(sink.smtp_port),
        "ALERTQ_CHANNELS__EMAIL__RECIPIENTS": f'["{ONCALL}"]',
    }
    return api_env(base, sink, "slack", sqlite_store(tmp_path), two_way=False, **{**email, **extra})


def test_a_slack_channel_not_found_arrives_by_email_once_with_the_reason_and_a_replay_sends_no_second_mail(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    with sinks(tmp_path) as start:
        sink = start(slack__channels="C0OTHER")  # the configured C0ALERTS does not exist: channel_not_found
        env = fallback_env(alertq_env, sink, tmp_path)
        port = free_port()
        slack = start_worker(env, channel="slack", ALERTQ_WORKER__METRICS_PORT=str(port))
        email = start_worker(env, channel="email")
        disk = Service.new(host_name="web01", service_name="Disk /")
        enqueue_all(env, [command_line("slack", disk, "PROBLEM", 2, CRITICAL, "alice", 1)])

        [mail] = wait_mails(sink, 1)
        assert mail["to"] == [ONCALL]
        assert mail["subject"] == "[fallback] ** PROBLEM Service Alert: web01/Disk / is CRITICAL **"
        reason = f"Fallback: slack gave up (permanent): slack channel {SLACK_CHANNEL} not found (channel_not_found)"
        assert reason in mail["text"] and CRITICAL in mail["text"]
        assert reason in mail["html"]
        assert amqp.wait_depth(amqp_url, names.DEAD_QUEUE, 1) == 1  # the dead letter stays, for replay
        [dead_lettered] = slack.wait_log("delivery.dead_lettered")
        [sent] = slack.wait_log("delivery.fallback_sent")
        assert sent["fallback"] == "email" and sent["event_id"] == dead_lettered["event_id"]
        assert metric(scrape(port)[1], "alertq_fallbacks_total", channel="slack", fallback="email") == 1.0

        # Later: the dead letter is replayed, Slack still refuses; the dead letter comes back, no mail.
        result = run(["alertq", "dlq", "replay", "--channel", "slack"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "replayed 1 of 1" in result.stdout
        slack.wait_log("delivery.dead_lettered", count=2)
        [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=60)
        assert dead.headers[names.HEADER_DEAD_REASON] == "permanent"
        assert dead.headers[names.HEADER_REPLAY_COUNT] == 1
        assert dead.headers[names.HEADER_FALLBACK_SENT] == "email"
        assert dead.json["channel"] == "slack" and "fallback" not in dead.json  # the original, byte for byte
        time.sleep(3)  # a copy would have been confirmed before the dead letter: give the mail time
        assert len(mails(sink)) == 1
        assert queue_counts(amqp_url, names.notify_queue("email"))[0] == 0
        assert len(email.events("delivery.delivered")) == 1
        assert len(slack.events("delivery.fallback_sent")) == 1
        assert metric(scrape(port)[1], "alertq_fallbacks_total", channel="slack", fallback="email") == 1.0
        posts = [c for c in sink.calls("slack") if str(c["path"]).endswith("/chat.postMessage")]
        assert len(posts) == 2  # the first try and the replay, nothing more


def test_a_fallback_copy_that_gives_up_too_is_dead_lettered_without_falling_back_again(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    """slack → email → slack would loop: the copy carries `fallback`, so it never falls back itself."""
    closed = free_port()  # nothing listens: the e-mail channel retries, then gives up (max-attempts)
    with sinks(tmp_path) as start:
        sink = start(slack__channels="C0OTHER")
        env = fallback_env(
            alertq_env,
            sink,
            tmp_path,
            ALERTQ_CHANNELS__EMAIL__PORT=str(closed),
            ALERTQ_CHANNELS__EMAIL__FALLBACK="slack",
            ALERTQ_RETRY__MAX_ATTEMPTS="2",
            ALERTQ_RETRY__DELAYS="1",
        )
        slack = start_worker(env, channel="slack")
        email = start_worker(env, channel="email")
        enqueue_all(env, [command_line("slack", Service.new(), "PROBLEM", 2, CRITICAL, "alice", 1)])

        email.wait_log("delivery.dead_lettered", timeout=90)
        letters = {d.json["channel"]: d for d in amqp.take(amqp_url, names.DEAD_QUEUE, count=2, timeout=60)}
        time.sleep(2)  # a copy back to slack, were there one, would be delivered by now
        assert amqp.take(amqp_url, names.DEAD_QUEUE, timeout=5) == []

    assert set(letters) == {"slack", "email"}
    copy = letters["email"]
    assert copy.headers[names.HEADER_DEAD_REASON] == "max-attempts"
    assert names.HEADER_FALLBACK_SENT not in copy.headers
    assert copy.json["fallback"]["from_channel"] == "slack"
    assert copy.json["fallback"]["original_event_id"] == letters["slack"].json["event_id"]
    assert email.events("delivery.fallback_sent") == []
    assert len(slack.events("delivery.dead_lettered")) == 1
    assert len(slack.events("delivery.fallback_sent")) == 1
