"""`alertq status` output: a table for people, JSON for scripts, one line for Nagios."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alertq.health.facts import Facts
from alertq.health.verdict import Level, Verdict
from alertq.table import render as render_table


def as_dict(facts: Facts, verdict: Verdict) -> dict[str, Any]:
    return {
        "status": verdict.level.name,
        "exit_code": int(verdict.level),
        "problems": [{"level": level.name, "text": text} for level, text in verdict.problems],
        "broker_error": facts.broker_error,
        "queues": [
            {"name": q.name, "channel": q.channel, "messages": q.messages, "consumers": q.consumers}
            for q in facts.queues
        ],
        "dead_letters": {
            "total": facts.dead_letters,
            "by_reason": dict(facts.dead_by_reason),
            "by_reason_examined": facts.dead_by_reason_sampled,
        },
        "spool": {"backlog": facts.spool_backlog, "oldest_age_seconds": facts.spool_oldest_age},
        "open_incidents": facts.open_incidents,
        "incidents": None
        if facts.incidents is None
        else [
            {
                "id": i.id,
                "name": i.name,
                "policy": i.policy,
                "opened_at": i.opened_at.isoformat(),
                "next_step": i.next_step,
                "next_step_due_at": i.due_at.isoformat() if i.due_at else None,
            }
            for i in facts.incidents
        ],
        "incidents_error": facts.incidents_error,
    }


def as_table(facts: Facts, verdict: Verdict) -> str:
    rows = [
        [q.name, q.channel or "", "missing" if q.messages is None else q.messages, q.consumers] for q in facts.queues
    ]
    parts = [render_table(["QUEUE", "CHANNEL", "MESSAGES", "CONSUMERS"], rows)] if rows else []
    if facts.dead_by_reason:
        reasons = ", ".join(f"{r} {n}" for r, n in facts.dead_by_reason.most_common())
        partial = (
            f" (of the first {facts.dead_by_reason_sampled})"
            if facts.dead_by_reason_sampled < facts.dead_letters
            else ""
        )
        parts.append(f"dead letters: {facts.dead_letters}: {reasons}{partial}")
    else:
        parts.append(f"dead letters: {facts.dead_letters}")
    age = f", oldest {facts.spool_oldest_age:.0f}s" if facts.spool_oldest_age is not None else ""
    parts.append(f"spool backlog: {facts.spool_backlog}{age}")
    parts += incident_lines(facts)
    parts.append(f"status: {verdict.level.name}")
    parts += [f"  {level.name}: {text}" for level, text in verdict.problems]
    return "\n".join(parts)


INCIDENT_ROWS = 20


def incident_lines(facts: Facts) -> list[str]:
    if facts.incidents_error:
        return [f"open incidents: unknown ({facts.incidents_error})"]
    if facts.incidents is None:
        return ["open incidents: n/a (no routing_file: escalation is off)"]
    lines = [f"open incidents: {len(facts.incidents)}"]
    if facts.incidents:
        now = datetime.now(UTC)
        rows = [
            [i.id, i.name, i.policy, _ago(now, i.opened_at), *_next(now, i.next_step, i.due_at)]
            for i in facts.incidents[:INCIDENT_ROWS]
        ]
        lines.append(render_table(["INCIDENT", "HOST/SERVICE", "POLICY", "OPENED", "NEXT STEP", "DUE"], rows))
        if len(facts.incidents) > INCIDENT_ROWS:
            lines.append(f"… and {len(facts.incidents) - INCIDENT_ROWS} more (alertq status --json lists all)")
    return lines


def _ago(now: datetime, moment: datetime) -> str:
    return f"{_duration((now - moment).total_seconds())} ago"


def _next(now: datetime, step: int | None, due: datetime | None) -> list[str]:
    if step is None or due is None:
        return ["none left", "until ack or recovery"]
    seconds = (due - now).total_seconds()
    return [str(step), f"in {_duration(seconds)}" if seconds >= 0 else f"overdue {_duration(-seconds)}"]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def as_nagios(facts: Facts, verdict: Verdict) -> str:
    """`ALERTQ OK - summary | perfdata` (Nagios plugin guidelines: label=value;warn;crit;min)."""
    if verdict.problems:
        summary = "; ".join(text for level, text in verdict.problems if level == verdict.level)
    else:
        delivering = sum(1 for q in facts.queues if q.channel is not None)
        summary = f"{delivering} channels delivering, no dead letters"
    perf = [f"dead_letters={facts.dead_letters};1;;0", f"spool_backlog={facts.spool_backlog};;;0"]
    if facts.spool_oldest_age is not None:
        perf.append(f"spool_oldest_age={facts.spool_oldest_age:.0f}s;;;0")
    for q in facts.queues:
        if q.channel is not None and q.messages is not None:
            perf.append(f"queue_{q.channel}={q.messages};;;0")
            perf.append(f"consumers_{q.channel}={q.consumers};;;0")
    if facts.open_incidents is not None:
        perf.append(f"open_incidents={facts.open_incidents};;;0")
    level = verdict.level if verdict.level in Level else Level.UNKNOWN
    return f"ALERTQ {level.name} - {summary.replace('|', '/')} | {' '.join(perf)}"
