"""`alertq worker webhook` as it runs in production: a real worker process, the real broker, a real HTTP
endpoint. Each outcome a user can check: what the endpoint got, what the dead letters hold, and why."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug import Request, Response

from broker import names
from tests.conftest import run
from tests.support import amqp
from tests.support.rabbit import free_port
from tests.support.workers import (
    Endpoint,
    WorkerProcess,
    endpoint,
    event,
    metric,
    publish,
    scrape,
    webhook_worker_env,
)

SECRET = "hush-hush-webhook-signing-secret-42"
DEAD = names.DEAD_QUEUE


@pytest.fixture
def worker_env(alertq_env: dict[str, str], hook: Endpoint) -> dict[str, str]:
    return webhook_worker_env(alertq_env, hook, ALERTQ_CHANNELS__WEBHOOK__SIGNING_SECRET=SECRET)


def dead_letters(url: str, count: int) -> list[amqp.Received]:
    return amqp.take(url, DEAD, count=count, timeout=30)


def assert_no_secrets(worker: WorkerProcess, hook: Endpoint) -> None:
    text = worker.text()
    assert "s3cr3t-path" not in text and SECRET not in text and hook.url not in text


def test_delivers_the_event_as_queued_with_signature_and_event_id(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    port = free_port()
    worker = start_worker(worker_env, ALERTQ_WORKER__METRICS_PORT=str(port))
    sent = event()
    (body,) = publish(amqp_url, [sent])

    assert hook.wait_for(1) == 1
    hit = hook.hits[0]
    assert hit.body == body
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Alertq-Event-Id"] == sent["event_id"]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hit.headers["X-Alertq-Signature"] == expected

    (delivered,) = worker.wait_log("delivery.delivered")
    assert (delivered["event_id"], delivered["channel"], delivered["attempt"]) == (sent["event_id"], "webhook", 1)
    assert amqp.depth(amqp_url, names.notify_queue("webhook")) == 0
    assert amqp.depth(amqp_url, DEAD) == 0
    status, text = scrape(port)
    assert status == 200
    assert metric(text, "alertq_deliveries_total", channel="webhook", outcome="delivered") == 1
    assert metric(text, "alertq_delivery_seconds_count", channel="webhook") == 1
    assert scrape(port, "/healthz")[0] == 200
    assert worker.terminate() == 0
    assert_no_secrets(worker, hook)


def allowed_cpus(pid: int) -> list[set[int]]:
    """The CPUs each thread of `pid` may run on (what `taskset -p <thread id>` shows)."""
    return [os.sched_getaffinity(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()]


@pytest.mark.parametrize("one_cpu", [True, False])
def test_its_threads_stay_on_one_cpu_unless_told_not_to(
    one_cpu: bool,
    worker_env: dict[str, str],
    amqp_url: str,
    hook: Endpoint,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    worker = start_worker(worker_env, ALERTQ_WORKER__ONE_CPU=str(one_cpu).lower())
    publish(amqp_url, [event()])
    assert hook.wait_for(1) == 1
    worker.wait_log("delivery.delivered")  # its lane threads exist by now
    (started,) = worker.events("worker.started")
    threads = allowed_cpus(worker.popen.pid)
    assert len(threads) >= 2  # the connection thread and a lane
    ours = os.sched_getaffinity(0)
    if one_cpu and len(ours) > 1:
        assert started["cpu"] in ours
        assert all(cpus == {started["cpu"]} for cpus in threads), threads
        # Another worker on this host sees it there and counts it when choosing its own CPU.
        from workers import one_cpu as pinning

        assert pinning.pinned_workers(ours)[started["cpu"]] >= 1
    else:  # told not to, or nothing to choose from: left where the system put it
        assert started["cpu"] is None
        assert all(cpus == ours for cpus in threads), threads
    assert worker.terminate() == 0


def test_a_worker_takes_the_cpu_fewest_other_workers_hold() -> None:
    from workers.one_cpu import choose

    assert choose({0, 1}, Counter(), here=1) == 1, "nothing taken: stay where the kernel started it"
    assert choose({0, 1}, Counter({1: 1}), here=1) == 0, "a second worker goes to the other core"
    assert choose({0, 1, 2, 3}, Counter({0: 2, 1: 1, 2: 1, 3: 1}), here=0) == 1
    assert choose({2, 3}, Counter({0: 5}), here=3) == 3, "CPUs it may not use do not count"


def test_5xx_and_timeouts_wait_in_the_broker_then_deliver(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    released = threading.Event()

    def flaky(_request: Request, n: int) -> Response:
        if n == 0:
            return Response("upstream down", 502)
        if n == 1:
            released.wait(5)  # longer than the worker's read timeout
            return Response("too late", 200)
        return Response("ok", 200)

    hook.behaviour = flaky
    port = free_port()
    worker = start_worker(
        worker_env, ALERTQ_CHANNELS__WEBHOOK__HTTP__READ_TIMEOUT="1", ALERTQ_WORKER__METRICS_PORT=str(port)
    )
    sent = event()
    publish(amqp_url, [sent])

    # After the 502 the message sits in the 1 s delay queue; the worker holds nothing.
    assert hook.wait_for(1) == 1
    (scheduled, *_) = worker.wait_log("delivery.retry_scheduled")
    assert (scheduled["attempt"], scheduled["retry_in"]) == (1, 1)
    assert scheduled["error"].startswith("HTTP 502")
    assert hook.wait_for(3, timeout=30) == 3
    released.set()
    (delivered,) = worker.wait_log("delivery.delivered")
    assert delivered["attempt"] == 3
    retried = worker.events("delivery.retry_scheduled")
    assert [(s["attempt"], s["retry_in"], s["error"]) for s in retried][1] == (2, 2, "timed out")

    gaps = [b.at - a.at for a, b in zip(hook.hits, hook.hits[1:], strict=False)]
    assert gaps[0] >= 1.0  # tier 1
    assert gaps[1] >= 1.0 + 2.0  # read timeout, then tier 2
    assert {hit.event_id for hit in hook.hits} == {sent["event_id"]}
    text = scrape(port)[1]
    assert metric(text, "alertq_retries_total", channel="webhook") == 2
    assert metric(text, "alertq_deliveries_total", channel="webhook", outcome="retried") == 2
    assert metric(text, "alertq_deliveries_total", channel="webhook", outcome="delivered") == 1
    assert amqp.depth(amqp_url, DEAD) == 0


def test_a_retry_is_held_by_the_broker_not_the_worker(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    hook.behaviour = lambda _r, n: Response("busy", 503) if n == 0 else Response("ok", 200)
    port = free_port()
    worker = start_worker(worker_env, ALERTQ_RETRY__DELAYS="6", ALERTQ_WORKER__METRICS_PORT=str(port))
    publish(amqp_url, [event()])
    worker.wait_log("delivery.retry_scheduled")
    assert amqp.depth(amqp_url, names.delay_queue(6)) == 1
    assert metric(scrape(port)[1], "alertq_in_flight", channel="webhook") == 0
    assert hook.wait_for(2, timeout=30) == 2
    worker.wait_log("delivery.delivered")
    assert amqp.depth(amqp_url, names.delay_queue(6)) == 0


def test_retry_after_is_honoured(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    hook.behaviour = lambda _r, n: (
        Response("slow down", 429, headers={"Retry-After": "3"}) if n == 0 else Response("ok", 200)
    )
    worker = start_worker(worker_env)
    publish(amqp_url, [event()])
    assert hook.wait_for(2, timeout=30) == 2
    worker.wait_log("delivery.delivered")
    (scheduled,) = worker.events("delivery.retry_scheduled")
    assert scheduled["retry_in"] == 3
    assert hook.hits[1].at - hook.hits[0].at >= 3.0


def test_a_permanent_4xx_is_dead_lettered_at_once_with_its_reason(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    hook.behaviour = lambda _r, _n: Response("no_such_hook", 404)
    worker = start_worker(worker_env)
    sent = event()
    (body,) = publish(amqp_url, [sent], headers={"trace": "abc"})
    (dead,) = dead_letters(amqp_url, 1)
    assert dead.body == body
    assert dead.routing_key == "notify.webhook"
    assert dead.properties.message_id == sent["event_id"]
    assert dead.headers[names.HEADER_DEAD_REASON] == "permanent"
    assert dead.headers[names.HEADER_LAST_ERROR] == "HTTP 404: no_such_hook"
    assert dead.headers["trace"] == "abc"
    assert names.HEADER_DEAD_AT in dead.headers
    assert len(hook.hits) == 1
    (logged,) = worker.wait_log("delivery.dead_lettered")
    assert (logged["event_id"], logged["reason"], logged["attempt"]) == (sent["event_id"], "permanent", 1)


def test_gives_up_after_max_attempts(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    hook.behaviour = lambda _r, _n: Response("broken", 500)
    start_worker(worker_env, ALERTQ_RETRY__MAX_ATTEMPTS="3", ALERTQ_RETRY__DELAYS="1")
    (body,) = publish(amqp_url, [event()])
    (dead,) = dead_letters(amqp_url, 1)
    assert dead.body == body
    assert dead.headers[names.HEADER_DEAD_REASON] == "max-attempts"
    assert dead.headers[names.HEADER_ATTEMPT] == 3
    assert len(hook.hits) == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{this is not json", "invalid"),
        (b'{"schema": "alertq.alert/1", "event_id": "x"}', "invalid"),
        (b"\xff\xfe binary", "invalid"),
    ],
)
def test_a_malformed_body_is_dead_lettered_invalid_byte_for_byte(
    worker_env: dict[str, str],
    amqp_url: str,
    hook: Endpoint,
    start_worker: Callable[..., WorkerProcess],
    body: bytes,
    reason: str,
) -> None:
    start_worker(worker_env)
    publish(amqp_url, [body], headers={"origin": "test"})
    (dead,) = dead_letters(amqp_url, 1)
    assert dead.body == body
    assert dead.headers[names.HEADER_DEAD_REASON] == reason
    assert dead.headers["origin"] == "test"
    assert "alertq.alert/1" in dead.headers[names.HEADER_LAST_ERROR]
    assert hook.hits == []


def test_an_unknown_schema_major_is_dead_lettered_unsupported(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker(worker_env)
    (body,) = publish(amqp_url, [event(schema="alertq.alert/2")])
    (dead,) = dead_letters(amqp_url, 1)
    assert dead.body == body
    assert dead.headers[names.HEADER_DEAD_REASON] == "unsupported-schema"
    assert hook.hits == []


def test_a_too_old_event_is_dead_lettered_expired(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker(worker_env, ALERTQ_RETRY__MAX_AGE="60")
    old, fresh = event(age=120), event()
    bodies = publish(amqp_url, [old, fresh])
    (dead,) = dead_letters(amqp_url, 1)
    assert dead.body == bodies[0]
    assert dead.headers[names.HEADER_DEAD_REASON] == "expired"
    assert hook.wait_for(1) == 1
    assert hook.event_ids() == [fresh["event_id"]]


def test_contacts_with_their_own_url_go_there(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    for team in endpoint():
        worker_env["ALERTQ_CHANNELS__WEBHOOK__URLS"] = f'{{"sms-team": "{team.url}"}}'
        start_worker(worker_env)
        to_team = event(contact={"name": "sms-team", "email": None, "pager": "+49123"})
        to_default = event()
        publish(amqp_url, [to_team, to_default])
        assert team.wait_for(1) == 1 and hook.wait_for(1) == 1
        assert team.event_ids() == [to_team["event_id"]]
        assert hook.event_ids() == [to_default["event_id"]]


@pytest.mark.parametrize(
    ("channel", "extra", "message"),
    [
        ("pager", {}, "unknown channel 'pager'; channels: mattermost, slack, email, webhook"),
        ("webhook", {"ALERTQ_CHANNELS__WEBHOOK__URL": ""}, "channel 'webhook' has no URL"),
        ("webhook", {"ALERTQ_CHANNELS__WEBHOOK__ENABLED": "false"}, "channel 'webhook' is disabled"),
    ],
)
def test_refuses_a_channel_it_cannot_serve_in_one_line(
    alertq_env: dict[str, str], channel: str, extra: dict[str, str], message: str
) -> None:
    result = run(["alertq", "worker", channel], {**alertq_env, **extra})
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_teaches_with_examples(alertq_env: dict[str, str]) -> None:
    result = run(["alertq", "worker", "--help"], alertq_env)
    assert result.returncode == 0
    assert "Examples:" in result.stdout and "alertq worker webhook" in result.stdout
