"""What the escalator does with each message it consumes: the rules of escalation.

- A PROBLEM (the core's own, not one of our steps) opens an incident under the first matching policy
  and schedules step 1. Duplicates (one per contact and channel) find the incident open: nothing more.
- ACKNOWLEDGEMENT, RECOVERY and DOWNTIMESTART from the core, and acknowledgements clicked in chat,
  close the incident; a later PROBLEM opens a new one.
- A timer hops on until due, then fires its step if the incident is still open and the step still
  unsent (the store's claim), sends the step's notifications and schedules the next step. After the
  last step the incident stays open, with nothing left to send, until it is acknowledged or recovers:
  the core's re-notifications of the same problem must not start the escalation over.

Every decision is a `Decision`: what to publish, and what to record once the broker confirmed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from broker import names
from broker.publisher import json_properties
from cores.base import Target
from escalator import metrics, schedule, timers
from escalator.notices import step_notices
from escalator.outgoing import Decision, Outgoing
from schemas.ack import AckMessage
from schemas.alert import AlertEvent, parse_alert
from schemas.routing import RoutingConfig
from schemas.timer import EscalationTimer
from state.store import Incident, IncidentStore

log = structlog.get_logger("alertq.escalator")

# A target check that takes longer than TARGET_SLOW seconds and still cannot tell pauses the checks for
# TARGET_PAUSE seconds (steps go out unchecked meanwhile, as for any unknown answer).
TARGET_SLOW = 1.0
TARGET_PAUSE = 60.0

# The core's notification types that end an incident, and the cause recorded for each.
CLOSING_TYPES = {"ACKNOWLEDGEMENT": "acknowledged", "RECOVERY": "recovered", "DOWNTIMESTART": "downtime"}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Decisions:
    def __init__(
        self,
        routing: RoutingConfig,
        store: IncidentStore,
        target: Target | None = None,
        clock: Callable[[], datetime] = utc_now,
        catch_up_after: float = 60.0,
    ) -> None:
        self.routing = routing
        self.store = store
        self.target = target
        self.clock = clock
        self.catch_up_after = timedelta(seconds=catch_up_after)
        # Steps whose notifications are on their way to the broker, not yet confirmed: a second timer
        # for one of them (the sweep's, say) must not find it "claimed but unsent" and send it again.
        self.sending: set[tuple[int, int]] = set()
        self._target_paused_until = 0.0

    # ---- alerts from the core --------------------------------------------------------------------

    def on_alert(self, event: AlertEvent) -> Decision:
        if event.escalation is not None and event.escalation.step >= 1:
            return Decision()  # one of our own steps, on its way to a channel
        kind = event.notification_type.upper()
        if kind == "PROBLEM":
            return self._open(event)
        if kind in CLOSING_TYPES:
            self._close(event.incident_key, CLOSING_TYPES[kind], f"{kind.lower()} from the core")
        return Decision()

    def _open(self, event: AlertEvent) -> Decision:
        policy = self.routing.policy_for(event)
        if policy is None:
            if event.escalation is not None and event.escalation.policy:
                log.warning("escalator.unknown_policy", policy=event.escalation.policy, key=event.incident_key)
            return Decision()
        name = self.routing.policy_name(policy)
        now = self.clock()
        # From when the core saw it, not when we did: after an outage of the escalator the steps keep
        # their times. A producer clock ahead of ours must not push the steps later.
        opened_at = min(event.created_at, now)
        due = schedule.first_due(policy, opened_at)
        incident, new = self.store.open(event.incident_key, name, due, opened_at, event.model_dump_json(by_alias=True))
        if not new:
            return Decision()
        metrics.INCIDENTS_OPENED.labels(name).inc()
        log.info("escalator.opened", incident=incident.id, key=incident.key, policy=name, step_due=due.isoformat())
        timer = EscalationTimer(incident_id=incident.id, key=incident.key, step=1, due_at=due)
        return Decision([timers.schedule(timer, (due - now).total_seconds())])

    def _close(self, key: str, cause: str, why: str) -> None:
        incident = self.store.open_for(key)
        if incident is not None and self.store.close(incident.id, why, self.clock()):
            metrics.INCIDENTS_CLOSED.labels(cause).inc()
            log.info("escalator.closed", incident=incident.id, key=key, reason=why)

    # ---- acknowledgements clicked in chat --------------------------------------------------------

    def on_ack(self, ack: AckMessage) -> Decision:
        # Acknowledge and Snooze mean someone has it; Recheck now and Unacknowledge do not stop anything.
        if ack.action not in ("acknowledge", "snooze"):
            return Decision()
        key = ack.host_id if ack.service_id is None else f"{ack.host_id}/{ack.service_id}"
        done = "acknowledged" if ack.action == "acknowledge" else "snoozed"
        self._close(key, "chat-ack", f"{done} in {ack.source} by {ack.chat_user}")
        return Decision()

    # ---- timers ----------------------------------------------------------------------------------

    def on_timer(self, timer: EscalationTimer) -> Decision:
        incident = self.store.get(timer.incident_id)
        if incident is None or not incident.is_open:
            return Decision()  # acknowledged or recovered meanwhile: the timer just ends
        if (incident.id, timer.step) in self.sending:
            return Decision()
        if incident.next_step > timer.step and not self.store.step_unsent(incident.id, timer.step):
            return Decision()  # a duplicate of a timer whose step went out already
        remaining = (timer.due_at - self.clock()).total_seconds()
        if timers.next_hop(remaining) is not None:
            return Decision([timers.schedule(timer, remaining)])
        return self.fire(incident, timer.step, timer.due_at)

    def on_overdue(self, incident: Incident) -> Decision:
        """A step long past due with no timer seen (a timer lost with a broker's data): fire it now."""
        assert incident.due_at is not None
        log.warning("escalator.overdue", incident=incident.id, key=incident.key, step=incident.next_step)
        return self.fire(incident, incident.next_step, incident.due_at)

    def fire(self, incident: Incident, step: int, due: datetime) -> Decision:
        if (incident.id, step) in self.sending:
            return Decision()
        policy = self.routing.policies.get(incident.policy)
        if policy is None:
            self._close(incident.key, "policy-gone", f"policy {incident.policy!r} is no longer in the routing file")
            return Decision()
        if self._target_says_resolved(incident):
            self._close(incident.key, "target", f"{self.target_name} reports no unacknowledged problem")
            return Decision()
        now = self.clock()
        # The next step counts from this one's due time, so small delays never add up; but a step sent
        # long after it was due (the escalator or broker was down) must not drag the following steps
        # into the past and send them all at once: they keep their spacing from now.
        following = schedule.next_due(policy, step, due if now - due <= self.catch_up_after else now)
        if not self.store.record_step(incident.id, step, following, now) and not self.store.step_unsent(
            incident.id, step
        ):
            return Decision()  # closed, or sent, since we looked
        problem = parse_alert(incident.event.encode())
        notices = step_notices(self.routing, incident, problem, step, now)
        publish = [
            Outgoing(
                names.EVENTS_EXCHANGE,
                names.notify_key(notice.channel),
                notice.to_json(),
                json_properties(notice.event_id, type_="alertq.alert/1"),
            )
            for notice in notices
        ]
        if following is not None:
            timer = EscalationTimer(incident_id=incident.id, key=incident.key, step=step + 1, due_at=following)
            publish.append(timers.schedule(timer, (following - now).total_seconds()))

        def settled(confirmed: bool) -> None:
            self.sending.discard((incident.id, step))
            if not confirmed:
                return  # the input goes back to the queue; its redelivery finds the step unsent
            self.store.mark_sent(incident.id, step, self.clock())
            lateness = (now - due).total_seconds()
            metrics.STEPS_SENT.labels(incident.policy).inc()
            metrics.STEP_LATENESS.observe(max(lateness, 0.0))
            for notice in notices:
                metrics.NOTICES_SENT.labels(notice.channel).inc()
            log.info(
                "escalator.step_sent",
                incident=incident.id,
                key=incident.key,
                step=step,
                notifications=len(notices),
                lateness=round(lateness, 3),
                next_due=following.isoformat() if following else None,
            )

        self.sending.add((incident.id, step))
        return Decision(publish, settled)

    @property
    def target_name(self) -> str:
        return self.target.name if self.target is not None else "no target"

    def _target_says_resolved(self, incident: Incident) -> bool:
        """True only when the core answers that the problem is acknowledged or gone. "Cannot tell" (None)
        escalates: a missed page is worse than an extra one. A core that answers slowly and then not at
        all is left alone for TARGET_PAUSE seconds, so a storm of steps does not wait out its timeout
        one by one (the escalator's one thread would stall every timer behind them)."""
        if self.target is None or time.monotonic() < self._target_paused_until:
            return False
        started = time.monotonic()
        answer = self.target.still_unacknowledged_problem(*_host_service(incident))
        if answer is None and time.monotonic() - started > TARGET_SLOW:
            self._target_paused_until = time.monotonic() + TARGET_PAUSE
            log.warning("escalator.target_paused", target=self.target.name, seconds=TARGET_PAUSE)
        return answer is False


def _host_service(incident: Incident) -> tuple[str, str | None]:
    host, _, service = incident.key.partition("/")
    return host, service or None
