"""What needs attention, with Nagios' levels (also `alertq status`'s exit code):
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

- CRITICAL: broker unreachable; a channel queue missing (topology not declared); a channel queue
  holding messages with no consumer (nobody delivers them); the spool's oldest event older than
  `spool_max_age` (the relay is not publishing); with escalation configured, messages in
  alertq.escalator with no escalator, or an escalation step long past due (nobody sends it).
- WARNING: dead letters present (someone should look: `alertq dlq list`); the state store unreadable;
  any other alertq queue holding messages with no consumer: alertq.escalator where escalation is off
  (it grows until RabbitMQ's memory or disk alarm blocks every publisher), alertq.acks (no
  forwarder), a disabled channel's queue. alertq.dead is the dead-letter case above; delay queues
  are not checked: they hold messages without a consumer by design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum

from alertq.health.facts import Facts
from broker import names


class Level(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass
class Verdict:
    level: Level = Level.OK
    problems: list[tuple[Level, str]] = field(default_factory=list)

    def add(self, level: Level, text: str) -> None:
        self.problems.append((level, text))
        self.level = max(self.level, level)


def judge(facts: Facts, spool_max_age: float, overdue_after: float = 120.0) -> Verdict:
    """`overdue_after`: seconds past due before an escalation step counts as not sent."""
    verdict = Verdict()
    if facts.broker_error:
        verdict.add(Level.CRITICAL, f"broker unreachable: {facts.broker_error}")
    for queue in facts.queues:
        if queue.channel is None:
            continue
        if queue.messages is None:
            verdict.add(Level.CRITICAL, f"queue {queue.name} missing (run `alertq topology declare`)")
        elif queue.messages > 0 and not queue.consumers:
            verdict.add(Level.CRITICAL, f"{queue.messages} messages in {queue.name} and no consumer")
    if facts.spool_oldest_age is not None and facts.spool_oldest_age > spool_max_age:
        verdict.add(
            Level.CRITICAL,
            f"spool backlog {facts.spool_backlog}, oldest {facts.spool_oldest_age:.0f}s (is the relay running?)",
        )
    if facts.dead_letters:
        verdict.add(Level.WARNING, f"{facts.dead_letters} dead letters (alertq dlq list)")
    if facts.incidents_error:
        verdict.add(Level.WARNING, f"open incidents unknown: {facts.incidents_error}")
    for queue in facts.queues:
        if queue.channel is not None or queue.name == names.DEAD_QUEUE or not queue.messages or queue.consumers:
            continue
        if queue.name == names.ESCALATOR_QUEUE and facts.escalation:
            verdict.add(Level.CRITICAL, f"{queue.messages} messages in {queue.name} and no escalator")
        else:
            verdict.add(Level.WARNING, f"{queue.messages} messages in {queue.name} and no consumer{_hint(queue.name)}")
    if facts.incidents is not None:
        now = datetime.now(UTC)
        overdue = [
            i for i in facts.incidents if i.due_at is not None and (now - i.due_at).total_seconds() > overdue_after
        ]
        if overdue:
            late = max((now - i.due_at).total_seconds() for i in overdue if i.due_at is not None)
            verdict.add(
                Level.CRITICAL,
                f"{len(overdue)} escalation steps overdue, up to {late:.0f}s (is `alertq escalator` running?)",
            )
    return verdict


def _hint(queue: str) -> str:
    if queue == names.ESCALATOR_QUEUE:
        return " (escalation is off here: `alertq topology declare` unbinds it; or is `alertq escalator` down?)"
    if queue == names.ACKS_QUEUE:
        return " (is `alertq ack-forwarder` running?)"
    return " (its channel is disabled here)"
