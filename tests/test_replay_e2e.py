"""Dead letters made by a real `alertq worker webhook`, replayed with `alertq dlq replay` once the endpoint
is fixed: what the endpoint gets, what stays dead-lettered, and the age limit after a replay.

Everything is a real process against the real broker and a real HTTP endpoint; the dead letters of
other channels and reasons are published as the workers and the broker publish them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug import Request, Response

from broker import names
from tests.conftest import run
from tests.support import amqp, dead_letters
from tests.support.dead_letters import Spec, comparable, comparable_published
from tests.support.workers import Endpoint, WorkerProcess, event, publish, webhook_worker_env

DEAD = names.DEAD_QUEUE


@pytest.fixture
def worker_env(alertq_env: dict[str, str], hook: Endpoint) -> dict[str, str]:
    return webhook_worker_env(alertq_env, hook, ALERTQ_LOG__LEVEL="info")


def replay(env: dict[str, str], *args: str) -> str:
    result = run(["alertq", "dlq", "replay", *args], env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def delivered_lines(worker: WorkerProcess, count: int) -> dict[str, dict[str, object]]:
    """The worker's `delivery.delivered` log lines by event id (waits for `count` of them)."""
    return {line["event_id"]: line for line in worker.wait_log("delivery.delivered", count)}


def test_replay_after_the_endpoint_is_fixed_delivers_each_dead_letter_and_keeps_the_rest_in_order(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    fixed = threading.Event()
    still_broken: set[str] = set()  # one contact's gateway stays broken after the fix

    def answer(request: Request, _n: int) -> Response:
        if fixed.is_set() and request.headers.get("X-Alertq-Event-Id") not in still_broken:
            return Response("ok", 200)
        return Response("no_such_hook", 404)

    hook.behaviour = answer
    worker = start_worker(worker_env)

    # The worker's own dead letters (404 → permanent) in two batches, with other channels' and
    # other reasons' dead letters before, between and after them.
    others = dead_letters.publish(
        amqp_url, [Spec("slack", "permanent"), Spec("webhook", "expired"), Spec("email", "max-attempts")]
    )
    first = [event() for _ in range(15)]
    bodies = publish(amqp_url, first)
    assert amqp.wait_depth(amqp_url, DEAD, 3 + 15) == 3 + 15
    others += dead_letters.publish(
        amqp_url, [Spec("webhook", "max-attempts"), Spec("mattermost", "permanent"), Spec("webhook", "delivery-limit")]
    )
    second = [event() for _ in range(15)]
    bodies += publish(amqp_url, second)
    assert amqp.wait_depth(amqp_url, DEAD, 6 + 30) == 6 + 30
    others += dead_letters.publish(amqp_url, [Spec("slack", "expired"), Spec("webhook", "invalid")])
    assert amqp.wait_depth(amqp_url, DEAD, 8 + 30) == 8 + 30
    sent = {e["event_id"]: body for e, body in zip(first + second, bodies, strict=True)}
    assert sorted(hook.event_ids()) == sorted(sent)  # each tried once, answered 404
    assert len(worker.wait_log("delivery.dead_lettered", 30)) == 30

    fixed.set()
    broken_id = second[7]["event_id"]
    still_broken.add(broken_id)
    out = replay(worker_env, "--channel", "webhook", "--reason", "permanent")

    assert "replayed 30 of 30 matching dead letters" in out
    assert hook.wait_for(29, distinct=True) == 29
    delivered = delivered_lines(worker, 29)
    *left, dead_again = amqp.take(amqp_url, DEAD, count=9, timeout=60)
    hits = [hit for hit in hook.hits if hit.status == 200]
    # Every replayed notification arrived once, byte for byte, under its own event id.
    assert sorted(hit.event_id for hit in hits) == sorted(set(sent) - {broken_id})
    assert all(hit.body == sent[hit.event_id] for hit in hits)
    # The copies the worker took were replays: alertq-replay-count 1 (the worker logs it).
    assert set(delivered) == set(sent) - {broken_id}
    assert {line.get("replay_count") for line in delivered.values()} == {1}
    # The one still broken went back to the dead letters, once, saying it was a replay.
    assert dead_again.body == sent[broken_id]
    assert dead_again.headers[names.HEADER_DEAD_REASON] == "permanent"
    assert dead_again.headers[names.HEADER_REPLAY_COUNT] == 1
    assert names.HEADER_REPLAYED_AT in dead_again.headers
    assert [h.event_id for h in hook.hits].count(broken_id) == 2
    # What did not match stayed dead-lettered, untouched and in its order, ahead of the new arrival.
    assert [comparable(m) for m in left] == [comparable_published(letter) for letter in others]


def test_a_replayed_expired_dead_letter_is_delivered_and_an_old_event_still_expires(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker(worker_env, ALERTQ_RETRY__MAX_AGE="60")
    old = event(age=120)
    (body,) = publish(amqp_url, [old])
    assert amqp.wait_depth(amqp_url, DEAD, 1) == 1
    (expired,) = worker.wait_log("delivery.dead_lettered")
    assert (expired["event_id"], expired["reason"]) == (old["event_id"], "expired")
    assert hook.hits == []

    assert "replayed 1 of 1" in replay(worker_env, "--reason", "expired")

    # Still 120 s past created_at, but the replay was just now: delivered, not expired again.
    assert hook.wait_for(1, distinct=True) == 1
    assert (hook.hits[0].event_id, hook.hits[0].body) == (old["event_id"], body)
    assert delivered_lines(worker, 1)[old["event_id"]]["replay_count"] == 1

    # An event as old that nobody replayed still expires.
    other = event(age=120)
    publish(amqp_url, [other])
    (dead,) = amqp.take(amqp_url, DEAD, count=1, timeout=30)
    assert dead.properties.message_id == other["event_id"]
    assert dead.headers[names.HEADER_DEAD_REASON] == "expired"
    assert hook.event_ids() == [old["event_id"]]


def test_a_replay_grants_max_age_once_not_forever(
    worker_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    """A copy replayed longer than max_age ago (it sat in a queue nobody consumed) expires again."""
    start_worker(worker_env, ALERTQ_RETRY__MAX_AGE="60")
    long_ago = (datetime.now(UTC) - timedelta(seconds=120)).isoformat(timespec="seconds")
    just_now = datetime.now(UTC).isoformat(timespec="seconds")
    stale, fresh = event(age=300), event(age=300)
    publish(amqp_url, [stale], headers={names.HEADER_REPLAYED_AT: long_ago, names.HEADER_REPLAY_COUNT: 1})
    publish(amqp_url, [fresh], headers={names.HEADER_REPLAYED_AT: just_now, names.HEADER_REPLAY_COUNT: 1})

    (dead,) = amqp.take(amqp_url, DEAD, count=1, timeout=30)
    assert hook.wait_for(1) == 1
    assert dead.properties.message_id == stale["event_id"]
    assert dead.headers[names.HEADER_DEAD_REASON] == "expired"
    assert dead.headers[names.HEADER_LAST_ERROR] == "older than retry.max_age since its replay"
    assert hook.event_ids() == [fresh["event_id"]]
