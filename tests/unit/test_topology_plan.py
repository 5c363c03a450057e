"""`topology.plan`: what alertq declares, as data (the same plan is declared and exported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broker import names, topology
from schemas.settings import Settings


def settings(**data: Any) -> Settings:
    return Settings.model_validate(data)


def bindings_of(plan: topology.Plan, destination: str) -> set[tuple[str, str]]:
    return {(b.source, b.routing_key) for b in plan.bindings if b.destination == destination}


def test_each_enabled_channel_has_a_quorum_queue_bound_for_first_deliveries_and_retries() -> None:
    plan = topology.plan(settings(channels={"slack": {"enabled": False}}, broker={"delivery_limit": 7}))
    queues = {q.name: q.arguments for q in plan.queues}
    for channel in ("mattermost", "email", "webhook"):
        arguments = queues[names.notify_queue(channel)]
        assert arguments["x-queue-type"] == "quorum"
        assert arguments["x-dead-letter-exchange"] == names.DEAD_EXCHANGE
        assert arguments["x-dead-letter-strategy"] == "at-least-once"
        assert arguments["x-overflow"] == "reject-publish"
        assert arguments["x-delivery-limit"] == 7
        assert bindings_of(plan, names.notify_queue(channel)) == {
            (names.EVENTS_EXCHANGE, f"notify.{channel}"),
            (names.EVENTS_EXCHANGE, f"retry.{channel}"),
        }
    assert names.notify_queue("slack") not in queues


def test_the_escalator_sees_first_deliveries_per_enabled_channel_timers_and_acks_never_retries() -> None:
    plan = topology.plan(settings(channels={"slack": {"enabled": False}}), escalation=True)
    assert bindings_of(plan, names.ESCALATOR_QUEUE) == {
        (names.EVENTS_EXCHANGE, "notify.mattermost"),
        (names.EVENTS_EXCHANGE, "notify.email"),
        (names.EVENTS_EXCHANGE, "notify.webhook"),
        (names.EVENTS_EXCHANGE, names.ESCALATE_TIMER_KEY),
        (names.ACKS_EXCHANGE, "#"),
    }
    escalator = next(q for q in plan.queues if q.name == names.ESCALATOR_QUEUE)
    assert escalator.arguments["x-single-active-consumer"] is True
    # A full escalator queue must never make the broker refuse a notification routed to it too.
    assert escalator.arguments["x-overflow"] == "drop-head"


def test_without_escalation_configured_there_is_no_escalator_queue_to_fill_up() -> None:
    plan = topology.plan(settings())
    assert names.ESCALATOR_QUEUE not in {q.name for q in plan.queues}
    assert not bindings_of(plan, names.ESCALATOR_QUEUE)


def test_delay_queues_for_the_retry_tiers_bound_by_a_string_header_with_an_empty_key() -> None:
    plan = topology.plan(settings(retry={"delays": [5, 30]}))
    delays = {q.name: q.arguments for q in plan.queues if q.name.startswith("alertq.delay.")}
    assert set(delays) == {"alertq.delay.5s", "alertq.delay.30s"}
    assert delays["alertq.delay.30s"]["x-message-ttl"] == 30_000
    assert delays["alertq.delay.30s"]["x-dead-letter-exchange"] == names.EVENTS_EXCHANGE
    [binding] = [b for b in plan.bindings if b.destination == "alertq.delay.30s"]
    assert (binding.source, binding.routing_key) == (names.DELAY_EXCHANGE, "")
    assert binding.arguments == {"x-match": "all", names.HEADER_DELAY: "30"}


def test_the_timer_tiers_come_with_escalation_configured_or_asked_for() -> None:
    def delay_queues(plan: topology.Plan) -> set[str]:
        return {q.name for q in plan.queues if q.name.startswith("alertq.delay.")}

    plain = settings(retry={"delays": [10]})
    tiers = {names.delay_queue(s) for s in topology.TIMER_TIERS}
    assert delay_queues(topology.plan(plain)) == {"alertq.delay.10s"}
    assert delay_queues(topology.plan(plain, escalation=True)) == tiers | {"alertq.delay.10s"}
    routed = settings(retry={"delays": [10]}, routing_file=str(Path("routing.toml")))
    assert delay_queues(topology.plan(routed)) == tiers | {"alertq.delay.10s"}
    # A worker narrows the delay queues to its own.
    assert delay_queues(topology.plan(routed, delays=[10, 45])) == {"alertq.delay.10s", "alertq.delay.45s"}
    assert topology.TIMER_TIERS[0] == 1 and topology.TIMER_TIERS[-1] == 16384


def test_dead_letters_and_acks_have_their_exchanges_and_queues() -> None:
    plan = topology.plan(settings())
    assert {(e.name, e.type) for e in plan.exchanges} == {
        (names.EVENTS_EXCHANGE, "topic"),
        (names.DELAY_EXCHANGE, "headers"),
        (names.DEAD_EXCHANGE, "topic"),
        (names.ACKS_EXCHANGE, "topic"),
    }
    assert bindings_of(plan, names.DEAD_QUEUE) == {(names.DEAD_EXCHANGE, "#")}
    assert bindings_of(plan, names.ACKS_QUEUE) == {(names.ACKS_EXCHANGE, "#")}
