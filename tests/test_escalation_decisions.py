"""The escalator's rules on a real SQLite store with a fixed clock (no broker: what would be published)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from broker import names
from escalator.decisions import Decisions
from schemas.alert import parse_alert
from schemas.routing import RoutingConfig
from schemas.timer import EscalationTimer, parse_timer
from state.store import SqliteIncidentStore
from tests.support.workers import event

NOW = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
ROUTING = RoutingConfig.model_validate(
    {
        "contacts": {"alice": {"addresses": {"webhook": "alice"}}},
        "policies": {
            "web": {
                "hosts": ["web*"],
                "repeat": 1,
                "steps": [{"after": "5m", "notify": ["alice"], "channels": ["webhook"]}],
            }
        },
    }
)


def decisions(tmp_path: Path, now: datetime) -> Decisions:
    return Decisions(ROUTING, SqliteIncidentStore(tmp_path / "alertq.db"), clock=lambda: now)


def test_after_an_outage_the_overdue_step_goes_at_once_and_the_next_keeps_its_spacing(tmp_path: Path) -> None:
    hour_old = event(host={"id": "web01", "name": "web01", "display_name": "web01"})
    hour_old["created_at"] = (NOW - timedelta(hours=1)).isoformat()
    rules = decisions(tmp_path, NOW)

    [first_timer] = rules.on_alert(parse_alert(json.dumps(hour_old).encode())).publish
    assert first_timer.exchange == names.EVENTS_EXCHANGE, "due 55 min ago: straight back, no delay queue"
    timer = parse_timer(first_timer.body)
    assert timer.due_at == NOW - timedelta(minutes=55)

    fired = rules.on_timer(timer)
    notice, next_timer = fired.publish
    assert notice.routing_key == "notify.webhook"
    assert parse_alert(notice.body).escalation is not None
    following = parse_timer(next_timer.body)
    assert following.step == 2 and following.due_at == NOW + timedelta(minutes=5), "5 min from now, not 50 min ago"
    assert next_timer.properties.headers == {names.HEADER_DELAY: "256"}


def test_a_timer_for_an_acknowledged_incident_or_a_sent_step_sends_nothing(tmp_path: Path) -> None:
    rules = decisions(tmp_path, NOW)
    problem = event(host={"id": "web01", "name": "web01", "display_name": "web01"}, created_at=NOW.isoformat())
    [published] = rules.on_alert(parse_alert(json.dumps(problem).encode())).publish
    timer = parse_timer(published.body)
    later = decisions(tmp_path, timer.due_at)
    step = later.on_timer(timer)
    assert len(step.publish) == 2 and step.settled is not None
    step.settled(True)
    assert later.on_timer(timer).publish == [], "a duplicate of a sent step's timer"

    ack = dict(problem, notification_type="ACKNOWLEDGEMENT", event_id="ack-1")
    later.on_alert(parse_alert(json.dumps(ack).encode()))
    step2 = EscalationTimer(incident_id=timer.incident_id, key=timer.key, step=2, due_at=timer.due_at)
    assert later.on_timer(step2).publish == []


def test_a_core_that_times_out_is_asked_once_not_once_per_step(tmp_path: Path, httpserver: HTTPServer) -> None:
    """Fail open, and fast: 5 steps due at once with a core that never answers in time cost one timeout."""
    from cores.openitcockpit import SERVICES_INDEX, OpenItcockpit
    from schemas.ack_listener import AckTargetSettings

    asked: list[str] = []

    def too_slow(request: Request) -> Response:
        asked.append(request.path)
        time.sleep(2)
        return Response("{}", 200, content_type="application/json")

    httpserver.expect_request(SERVICES_INDEX).respond_with_handler(too_slow)
    target = OpenItcockpit(
        AckTargetSettings(kind="openitcockpit", url=httpserver.url_for("").rstrip("/"), api_key="k", timeout=1.2)
    )
    rules = Decisions(ROUTING, SqliteIncidentStore(tmp_path / "alertq.db"), target, clock=lambda: NOW)
    timers = []
    for number in range(5):
        host = {"id": f"web{number}", "name": f"web{number}", "display_name": f"web{number}"}
        problem = event(host=host, created_at=(NOW - timedelta(minutes=10)).isoformat())
        [published] = rules.on_alert(parse_alert(json.dumps(problem).encode())).publish
        timers.append(parse_timer(published.body))

    started = time.monotonic()
    sent = [rules.on_timer(timer) for timer in timers]
    elapsed = time.monotonic() - started

    assert all(len(decision.publish) == 2 for decision in sent), "every step goes out: the core could not tell"
    assert asked == [SERVICES_INDEX]
    assert elapsed < 1.2 * 2.5, f"{elapsed:.1f}s: the core's timeout was waited out more than once"
