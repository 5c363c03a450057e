"""Alert storms in webhook mode (issue 14): a chat's incoming webhook at `alertq sink`, and the generic
webhook channel with `fold` on, through real worker processes and the real broker. What is checked is
what the receiver sees: how many posts or requests, every problem (or event) in them once."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.conversations import root_text
from tests.support.sink import Sink, sinks
from tests.support.workers import Endpoint, WorkerProcess, publish, webhook_worker_env
from tests.test_storms import storm, wait_for

NAME = re.compile(r"svc-(\d{4})-end")


def webhook_env(alertq_env: dict[str, str], sink: Sink, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **alertq_env,
        "ALERTQ_CHANNELS__SLACK__URL": f"{sink.url}/hooks/slack/storm",
        "ALERTQ_CHANNELS__SLACK__RATE_LIMIT__PER_SECOND": "1",  # Slack's webhooks: about 1 a second
        "ALERTQ_CHANNELS__SLACK__RATE_LIMIT__BURST": "3",
        "ALERTQ_CONVERSATIONS__STORE": f"sqlite:///{tmp_path}/dedupe.db",
        "ALERTQ_RETRY__DELAYS": "1,2",
        "ALERTQ_WORKER__CONNECT_RETRY_WAIT": "0.1",
        **extra,
    }


def posts(sink: Sink) -> list[str]:
    return [root_text(m) for m in sink.messages() if m["channel"] == "slack"]


def lines_in(texts: list[str]) -> Counter[int]:
    """How often each service shows in these posts (digest lines or lone posts)."""
    seen: Counter[int] = Counter()
    for text in texts:
        seen.update({int(n) for n in NAME.findall(text)})
    return seen


def test_a_storm_of_problems_then_of_recoveries_folds_into_a_few_webhook_posts(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    count = 100
    with sinks(tmp_path) as start:
        sink = start()
        start_worker(webhook_env(alertq_env, sink, tmp_path), channel="slack")
        publish(amqp_url, storm(count, "PROBLEM"), channel="slack")
        took = wait_for(lambda: len(lines_in(posts(sink))) == count, "every problem in a post", 120)
        problem_posts = posts(sink)
        publish(amqp_url, storm(count, "RECOVERY"), channel="slack")
        recovered_in = wait_for(
            lambda: len(lines_in(posts(sink)[len(problem_posts) :])) == count, "every recovery", 120
        )
        recovery_posts = posts(sink)[len(problem_posts) :]
    print(
        f"\nwebhook mode, {count} problems x 2 contacts at 1/s: all shown after {took:.1f} s in "
        f"{len(problem_posts)} posts; {count} recoveries after {recovered_in:.1f} s in {len(recovery_posts)} posts"
    )
    shown = lines_in(problem_posts)
    assert sorted(shown) == list(range(count)) and set(shown.values()) == {1}  # each problem once
    assert any("problems on" in text for text in problem_posts)
    assert len(problem_posts) <= 10
    recovered = lines_in(recovery_posts)
    assert sorted(recovered) == list(range(count)) and set(recovered.values()) == {1}
    assert any("recoveries on" in text for text in recovery_posts)
    assert len(recovery_posts) <= 10


def test_a_single_problem_in_webhook_mode_is_still_its_own_post(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    with sinks(tmp_path) as start:
        sink = start()
        start_worker(webhook_env(alertq_env, sink, tmp_path), channel="slack")
        publish(amqp_url, storm(1, "PROBLEM"), channel="slack")  # two contacts, one post
        wait_for(lambda: len(posts(sink)) == 1, "the problem's post", 60)
        [text] = posts(sink)
    assert "problems on" not in text and "svc-0000-end" in text


def generic(alertq_env: dict[str, str], hook: Endpoint, **extra: str) -> dict[str, str]:
    limit = {
        "ALERTQ_CHANNELS__WEBHOOK__RATE_LIMIT__PER_SECOND": "1",
        "ALERTQ_CHANNELS__WEBHOOK__RATE_LIMIT__BURST": "3",
    }
    return webhook_worker_env(alertq_env, hook, **{**limit, **extra})


def events_in(hook: Endpoint) -> Counter[str]:
    seen: Counter[str] = Counter()
    for hit in hook.hits:
        body: dict[str, Any] = json.loads(hit.body)
        if body.get("schema") == "alertq.digest/1":
            assert body["count"] == len(body["events"])
            seen.update(e["event_id"] for e in body["events"])
        else:
            seen[body["event_id"]] += 1
    return seen


def test_the_generic_webhook_with_fold_on_sends_a_storm_as_a_few_digest_requests(
    alertq_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    items = [dict(e, channel="webhook") for e in storm(60, "PROBLEM")]
    start_worker(generic(alertq_env, hook, ALERTQ_CHANNELS__WEBHOOK__FOLD="true"))
    publish(amqp_url, items)
    wait_for(lambda: len(events_in(hook)) == len(items), "every event at the webhook", 120)
    hook.wait_quiet()
    seen = events_in(hook)
    print(f"\ngeneric webhook, fold on: {len(items)} events in {len(hook.hits)} requests")
    assert set(seen) == {e["event_id"] for e in items} and set(seen.values()) == {1}  # every contact's, once
    assert len(hook.hits) <= 8
    assert any(hit.headers.get("X-Alertq-Digest") for hit in hook.hits)


def test_the_generic_webhook_stays_one_request_per_event_by_default(
    alertq_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    items = [dict(e, channel="webhook") for e in storm(5, "PROBLEM")]
    start_worker(generic(alertq_env, hook, ALERTQ_CHANNELS__WEBHOOK__RATE_LIMIT__PER_SECOND="100"))
    publish(amqp_url, items)
    wait_for(lambda: len(hook.hits) >= len(items), "every event at the webhook", 60)
    hook.wait_quiet()
    assert sorted(hook.event_ids()) == sorted(e["event_id"] for e in items)
