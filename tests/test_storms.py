"""Alert storms folded into digests (issue 14), with real worker processes, the real broker and
`alertq sink`'s Slack API emulation limited as Slack limits chat.postMessage (1 per second per channel,
bursts of 5; 429 beyond). What is checked is what a reader of the channel sees: how many posts, every
problem's line there once, the lines marked when their incidents recover."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.conversations import api_env, root_text, roots, sqlite_store, thread
from tests.support.sink import Sink, sinks
from tests.support.workers import WorkerProcess, publish

SLACK_1_PER_SECOND = {
    "slack__post_rate_limit__requests": "1",
    "slack__post_rate_limit__seconds": "1",
    "slack__post_rate_limit__max_burst": "4",  # 5 pass back to back, as the bench's Slack
}
WORKER_BUDGET = {  # the worker told the chat's own numbers (it keeps one of the 5 in reserve: jitter)
    "ALERTQ_CHANNELS__SLACK__API_POST_RATE_LIMIT__PER_SECOND": "1",
    "ALERTQ_CHANNELS__SLACK__API_POST_RATE_LIMIT__BURST": "5",
}
NAME = re.compile(r"svc-(\d{4})-end")


def event(n: int, kind: str, contact: str, at: datetime) -> dict[str, Any]:
    """Service `svc-000n-end` on host `hostN`, as alertq-enqueue builds a Slack notification."""
    return {
        "schema": "alertq.alert/1",
        "event_id": str(uuid.uuid4()),
        "created_at": at.isoformat(),
        "channel": "slack",
        "kind": "service",
        "notification_type": kind,
        "host": {"id": f"h-{n}", "name": f"h-{n}", "display_name": f"host{n % 12}", "address": None},
        "service": {"id": f"s-{n}", "name": f"s-{n}", "display_name": f"svc-{n:04d}-end"},
        "state": 0 if kind == "RECOVERY" else (2 if n % 5 else 1),
        "output": "DISK OK" if kind == "RECOVERY" else f"DISK CRITICAL - free space {n}%\nperfdata",
        "long_output": "",
        "ack": None,
        "notification_number": 2 if kind == "RECOVERY" else 1,
        "contact": {"name": contact, "email": None, "pager": None, "address": None},
        "escalation": None,
        "source": {"producer_host": "test", "core": "naemon"},
    }


def storm(count: int, kind: str, contacts: tuple[str, ...] = ("alice", "bob")) -> list[dict[str, Any]]:
    at = datetime.now(UTC) + (timedelta(seconds=5) if kind == "RECOVERY" else timedelta())
    return [event(n, kind, contact, at) for n in range(count) for contact in contacts]


def lines_seen(sink: Sink) -> Counter[int]:
    """How often each service's line shows in the channel's posts (roots: digests and lone roots)."""
    seen: Counter[int] = Counter()
    for message in roots(sink, "slack"):
        seen.update({int(n) for n in NAME.findall(root_text(message))})
    return seen


def wait_for(check: Callable[[], bool], what: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {timeout:.0f} s")


def rate_limited(sink: Sink) -> int:
    refused = [call for call in sink.calls("slack") if int(call["status"]) == 429]
    for call in refused:
        print("429:", call["path"], call.get("at"), (call.get("body") or {}).get("thread_ts"))
    return len(refused)


def test_a_single_problem_in_quiet_times_is_posted_alone_at_once(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    with sinks(tmp_path) as start:
        sink = start(**SLACK_1_PER_SECOND)
        env = api_env(alertq_env, sink, "slack", sqlite_store(tmp_path), two_way=False, **WORKER_BUDGET)
        start_worker(env, channel="slack")
        publish(amqp_url, storm(1, "PROBLEM"), channel="slack")
        took = wait_for(lambda: len(roots(sink, "slack")) == 1, "the problem's root", 60)
        [root] = roots(sink, "slack")
    print(f"\nquiet problem posted alone after {took:.2f} s")
    assert "problems on" not in root_text(root)  # its own root, not a digest
    assert "svc-0000-end" in root_text(root)


def test_100_problems_into_a_1_per_second_channel_are_a_few_digests_then_marked_recovered(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    count = 100
    with sinks(tmp_path) as start:
        sink = start(**SLACK_1_PER_SECOND)
        env = api_env(alertq_env, sink, "slack", sqlite_store(tmp_path), two_way=False, **WORKER_BUDGET)
        start_worker(env, channel="slack")
        publish(amqp_url, storm(count, "PROBLEM"), channel="slack")
        took = wait_for(lambda: len(lines_seen(sink)) == count, "every problem's line", 120)
        posts = roots(sink, "slack")
        seen = lines_seen(sink)
        publish(amqp_url, storm(count, "RECOVERY"), channel="slack")

        def all_recovered() -> bool:
            texts = [root_text(m) for m in roots(sink, "slack")]
            lone = sum("RECOVERED" in t for t in texts if "problems on" not in t)
            marked = sum(t.count("recovered after") for t in texts if "problems on" in t)
            return lone + marked == count

        recovered_in = wait_for(all_recovered, "every problem marked recovered", 120)
        digests = [m for m in roots(sink, "slack") if "problems on" in root_text(m)]
        wait_for(lambda: all(thread(sink, m) for m in digests), "each digest's closing reply", 30)
        time.sleep(1.0)  # a second reply would come now
        replies = {m["id"]: [root_text(r) for r in thread(sink, m)] for m in digests}
        refused = rate_limited(sink)
        final = [root_text(m) for m in roots(sink, "slack")]
    print(
        f"\n{count} problems x 2 contacts into Slack at 1/s burst 5: all visible after {took:.1f} s in "
        f"{len(posts)} posts; all recovered after {recovered_in:.1f} s; {refused} answers 429"
    )
    assert sorted(seen) == list(range(count)) and set(seen.values()) == {1}  # every problem, once
    assert len(posts) <= 12
    assert refused == 0
    assert any("recovered" in text.splitlines()[0] for text in final if "problems on" in text)
    # Each digest's thread: one reply once all its lines closed, not one per batch of recoveries.
    assert all(len(texts) == 1 and texts[0].startswith("All closed") for texts in replies.values()), replies


def test_a_worker_killed_mid_digest_leaves_every_problem_shown_once(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    count = 120
    with sinks(tmp_path) as start:
        sink = start(**{**SLACK_1_PER_SECOND, "slack__answer_delay": "0.3"})
        env = api_env(
            alertq_env,
            sink,
            "slack",
            sqlite_store(tmp_path),
            two_way=False,
            **WORKER_BUDGET,
            ALERTQ_CHANNELS__SLACK__FOLD__MAX_ITEMS="10",  # a digest of many parts, posted 1/s
            ALERTQ_CONVERSATIONS__CLAIM_LEASE="3",
        )
        worker = start_worker(env, channel="slack")
        publish(amqp_url, storm(count, "PROBLEM"), channel="slack")
        wait_for(lambda: sum("problems on" in root_text(m) for m in roots(sink, "slack")) >= 2, "a digest part", 60)
        worker.kill()
        shown_at_kill = len(lines_seen(sink))
        start_worker(env, channel="slack")
        took = wait_for(lambda: len(lines_seen(sink)) == count, "every problem's line", 180)
        time.sleep(3)  # anything still to come (a part twice) would come now
        seen = lines_seen(sink)
        refused = rate_limited(sink)
        texts = [root_text(m) for m in roots(sink, "slack")]
    twice = sorted(n for n, times in seen.items() if times > 1)
    for n in twice:
        for text in texts:
            if f"svc-{n:04d}-end" in text:
                print(f"svc-{n:04d}-end shown in:", text.splitlines()[0][:120])
    print(
        f"\n{count} problems, worker SIGKILLed mid-digest with {shown_at_kill} shown: all {len(seen)} shown "
        f"{took:.1f} s after the restart, {len(twice)} twice, {refused} answers 429"
    )
    assert sorted(seen) == list(range(count))
    assert twice == []
