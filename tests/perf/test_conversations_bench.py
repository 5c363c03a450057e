"""Conversations in API mode against `alertq sink`, with webhook mode in the same run as the baseline
(`make bench`): 500 incidents, each a PROBLEM, an ACKNOWLEDGEMENT and a RECOVERY, through a real worker.

Figures:
- chat calls per incident in API mode, by kind (target: 1 post + 2 edits, and the replies alertq makes:
  one for the ACKNOWLEDGEMENT, one for the RECOVERY), read from the sink's record of every call;
- time per delivery, API mode against webhook mode (today's, without the dedupe window, and with it):
  the worker runs one delivery at a time (`lane_concurrency` 1), so the time between the first and the
  last delivery of a phase, over the deliveries, is the time each took, the store's work included; per
  chat call too, since API mode makes two calls for an acknowledgement or a recovery (edit + reply).

The sink answers at once and its rate limits are off (the clients' budgets raised to match), so the
figures are alertq's own cost, not a chat's pacing.
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import Settings
from tests.perf import bench
from tests.support.conversations import Service, api_env, summary
from tests.support.sink import Sink, sinks
from tests.support.workers import WorkerProcess, publish

pytestmark = pytest.mark.perf

INCIDENTS = 500
ROUNDS = 2
PHASES = ("PROBLEM", "ACKNOWLEDGEMENT", "RECOVERY")


def phase_events(services: list[Service], kind: str, at: datetime) -> list[dict[str, Any]]:
    state, output, number = {
        "PROBLEM": (2, "DISK CRITICAL - free space: / 120 MB (1%)", 1),
        "ACKNOWLEDGEMENT": (2, "DISK CRITICAL - free space: / 120 MB (1%)", 1),
        "RECOVERY": (0, "DISK OK - free space: / 5120 MB (42%)", 2),
    }[kind]
    return [
        {
            "schema": "alertq.alert/1",
            "event_id": str(uuid.uuid4()),
            "created_at": at.isoformat(),
            "channel": "mattermost",
            "kind": "service",
            "notification_type": kind,
            "host": {"id": s.host, "name": s.host, "display_name": s.host_name, "address": None},
            "service": {"id": s.service, "name": s.service, "display_name": s.service_name},
            "state": state,
            "output": output,
            "ack": {"author": "jdoe", "comment": "on it"} if kind == "ACKNOWLEDGEMENT" else None,
            "notification_number": number,
            "contact": {"name": "oncall"},
            "source": {"producer_host": "bench", "core": "naemon"},
        }
        for s in services
    ]


def seconds_per_delivery(worker: WorkerProcess, count: int, already: int) -> list[float]:
    """The phase's deliveries, once all are done: each one's own `seconds` from the worker's log, and
    (last) the span between the phase's first and last delivery over the deliveries in between."""
    lines = worker.wait_log("delivery.delivered", count=already + count, timeout=600)[already:]
    stamps = [datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp() for line in lines]
    return [float(line["seconds"]) for line in lines] + [(max(stamps) - min(stamps)) / (count - 1)]


def run_mode(
    mode: str, sink: Sink, alertq_env: dict[str, str], tmp_path: Path, round_number: int
) -> tuple[list[float], list[float]]:
    """One pass of the workload through a fresh worker: (each delivery's seconds, each phase's span per
    delivery)."""
    store = f"sqlite:///{tmp_path}/conversations-{mode}-{round_number}.db"
    common = {
        "ALERTQ_LOG__LEVEL": "info",
        "ALERTQ_WORKER__LANE_CONCURRENCY": "1",
        "ALERTQ_WORKER__LANE_BACKLOG": "100000",
        "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__PER_SECOND": "100000",
        "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__BURST": "100000",
        "ALERTQ_CONVERSATIONS__STORE": store,
    }
    if mode == "api":
        env = api_env(
            bench.deployed(alertq_env),
            sink,
            "mattermost",
            store,
            two_way=False,
            ALERTQ_CHANNELS__MATTERMOST__API_RATE_LIMIT__PER_SECOND="100000",
            ALERTQ_CHANNELS__MATTERMOST__API_RATE_LIMIT__BURST="100000",
            **common,
        )
    else:
        env = {
            **bench.deployed(alertq_env),
            "ALERTQ_CHANNELS__MATTERMOST__URL": f"{sink.url}/hooks/mattermost/bench-{round_number}",
            "ALERTQ_CHANNELS__MATTERMOST__DEDUPE_WINDOW": "120" if mode == "webhook+dedupe" else "0",
            **common,
        }
    worker = WorkerProcess(env, tmp_path / f"worker-{mode}-{round_number}.log", channel="mattermost").started()
    services = [Service.new(service_name=f"Disk {n}") for n in range(INCIDENTS)]
    each: list[float] = []
    spans: list[float] = []
    try:
        start = datetime.now(UTC)
        for number, kind in enumerate(PHASES):
            events = phase_events(services, kind, start + timedelta(seconds=number))
            publish(alertq_env["ALERTQ_BROKER__URLS"], events, channel="mattermost")
            *delivered, span = seconds_per_delivery(worker, INCIDENTS, number * INCIDENTS)
            each += delivered
            spans.append(span)
    finally:
        worker.terminate()
    return each, spans


def test_conversations_cost_against_webhook_mode(
    declared: Settings, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    modes = ("webhook", "api", "webhook+dedupe")
    each: dict[str, list[float]] = {m: [] for m in modes}
    spans: dict[str, list[float]] = {m: [] for m in modes}
    with sinks(tmp_path) as start:
        sink = start(mattermost__rate_limit__enabled="false", max_messages="100000", max_calls="100000")
        for round_number in range(ROUNDS):
            for mode in modes:  # interleaved, so that a neighbour's load hits every mode alike
                before = len(sink.calls("mattermost"))
                delivered, phase_spans = run_mode(mode, sink, alertq_env, tmp_path, round_number)
                each[mode] += delivered
                spans[mode] += phase_spans
                if mode == "api":
                    api_calls = [summary(c) for c in sink.calls("mattermost")[before:]]
        refused = [c for c in sink.calls("mattermost") if not 200 <= int(c["status"]) < 300]

    assert refused == []
    calls = Counter(api_calls)
    per_incident = {name: count / INCIDENTS for name, count in calls.items()}
    posts = per_incident.get("POST /posts root", 0)
    edits = per_incident.get("PUT /posts/{id}/patch", 0)
    replies = per_incident.get("POST /posts reply", 0)
    chat_calls = posts + edits + replies
    span = {m: statistics.median(spans[m]) for m in modes}
    slowest = {m: max(each[m]) for m in modes}
    # Per chat call: webhook mode makes one per delivery; API mode posts the root, then edit + reply twice.
    per_call_api = span["api"] * len(PHASES) / chat_calls
    bench.print_table(
        f"{INCIDENTS} incidents x PROBLEM, ACKNOWLEDGEMENT, RECOVERY, one worker, one delivery at a time",
        [
            bench.Row("root posts / incident", f"{posts:g}", "", "", "1", posts == 1),
            bench.Row("edits / incident", f"{edits:g}", "", "", "2", edits == 2),
            bench.Row("replies / incident", f"{replies:g}", "", "", "2 (ack, recovery)", replies == 2),
            bench.Row(
                "other calls / incident", f"{(sum(calls.values()) / INCIDENTS) - chat_calls:g}", "", "", "", None
            ),
            bench.Row(
                "time / delivery, API mode",
                bench.ms(span["api"]),
                bench.ms(span["webhook"]),
                f"{span['api'] / span['webhook']:.2f}x",
                "",
                None,
            ),
            bench.Row(
                "time / chat call, API mode",
                bench.ms(per_call_api),
                bench.ms(span["webhook"]),
                f"{per_call_api / span['webhook']:.2f}x",
                "",
                None,
            ),
            bench.Row(
                "time / delivery, webhook + dedupe",
                bench.ms(span["webhook+dedupe"]),
                bench.ms(span["webhook"]),
                f"{span['webhook+dedupe'] / span['webhook']:.2f}x",
                "",
                None,
            ),
        ],
        notes=[
            "baseline: webhook mode without the dedupe window (before this change), same sink, same run",
            "time / delivery = (last - first delivery of a phase) / deliveries, median over phases and rounds",
            f"API mode chat calls: {dict(calls)}",
            f"slowest single delivery: API {bench.ms(slowest['api'])}, webhook {bench.ms(slowest['webhook'])}",
            "conversations store: SQLite (WAL) in the test's directory",
        ],
    )
    assert posts == 1 and edits == 2 and replies == 2
