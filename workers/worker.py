"""`alertq worker <channel>`: deliver `alertq.notify.<channel>` to the channel's endpoint.

Top-down:
1. load the channel's Notifier (the registry in `workers/channels/`), serve /metrics and /healthz
   (`worker.metrics_port`), connect, declare the topology, consume with `worker.prefetch`
   (consumer.py: the main thread only ever runs pika, so heartbeats flow whatever the endpoints do);
2. each delivery, on the connection thread: parse it as `alertq.alert/1` (not valid → dead letter
   `invalid`, unknown major → `unsupported-schema`), ask the notifier for its target and put it in
   that target's lane (lanes.py); a congested lane (full and not moving) parks the message in a
   delay queue for `worker.park_delay` seconds without counting an attempt, so a slow target never
   fills the prefetch window;
3. in the lane thread: too old (age_limit.py: since creation, or since the last replay) → `expired`;
   wait for the target's token bucket (rate_limit.py); deliver, with a couple of quick in-process
   retries while the endpoint is unreachable (retries.py); then the outcome:
   - delivered → ack;
   - `Retryable` → republish to `alertq.delay` for the attempt's tier (or `Retry-After`, if longer),
     `alertq-attempt` + 1, then ack; the broker brings it back on `retry.<channel>` (no message
     waits unacked in the process); past `retry.max_attempts` → `max-attempts`, past the age limit
     → `expired`;
   - `Permanent` → dead letter `permanent` at once (`broker/dead_letters.py`);
   - a dead letter `permanent`, `max-attempts` or `expired` also sends one copy to each channel in
     `channels.<name>.fallback`, with a note why (fallback.py), published before the dead letter;
   every publish is confirmed before the input is acked; a refused publish requeues the input;
   a message from `alertq test` (header `alertq-report-to`) gets a receipt of its outcome (receipts.py);
   a message whose connection was lost before its lane got to it is skipped, not sent: the broker
   redelivers it on the next connection (sending it would only make a duplicate);
4. SIGTERM/SIGINT (`broker/shutdown.py`): stop consuming, requeue what has not started, finish what has
   (up to `worker.shutdown_grace`), exit 0. SIGKILL loses nothing: unacked messages are redelivered.

Every log line of a delivery carries event_id, channel, attempt (and the target's opaque key; for a
replayed dead letter `replay_count`); never a URL or secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from broker import dead_letters, names
from broker.metrics_server import serve
from broker.publisher import with_headers
from broker.shutdown import stop_on_signals
from delivery.chat.outcomes import Deferred
from delivery.outcomes import Permanent, Retryable
from schemas.alert import AlertEvent, parse_alert
from schemas.incident import incident_of
from schemas.settings import Settings
from schemas.versioning import UnsupportedSchema
from workers import age_limit, fallback, metrics, one_cpu, receipts, retries
from workers.channels import load_notifier
from workers.channels.base import ONE_BY_ONE, Notifier
from workers.consumer import Consumer, Delivery, Publication, Settlement
from workers.conversations.flow import contact_of, fingerprint
from workers.folds import NO_HOLD, FoldLanes, Hold
from workers.lanes import Lanes
from workers.rate_limit import RateLimits
from workers.receipts import Receipt

log = structlog.get_logger("alertq.worker")


class Worker:
    def __init__(self, settings: Settings, channel: str, metrics_port: int | None = None) -> None:
        self.settings = settings
        self.channel = channel
        self.metrics_port = settings.worker.metrics_port if metrics_port is None else metrics_port
        config = settings.channels.get(channel)
        self.notifier: Notifier = load_notifier(channel, config)
        self.fallback_channels = list(config.fallback)
        self.rate_limits = RateLimits(config.rate_limit)
        work = settings.worker
        self.lanes: Lanes[list[Delivery]] = Lanes(work.lane_concurrency, work.lane_backlog, work.park_after)
        self.fold_lanes: FoldLanes[tuple[Delivery, AlertEvent]] = FoldLanes(self.run_fold)
        self.consumer = Consumer(
            settings,
            channel,
            handle=self.on_delivery,
            on_stop=self.requeue_waiting,
            start_delays={*settings.retry.delays, settings.worker.park_delay},
        )
        metrics.IN_FLIGHT.labels(channel).set_function(lambda: self.consumer.in_flight)
        # Looked up once: `labels()` takes a lock and a dict lookup, on every delivery otherwise.
        self._delivered_count = metrics.DELIVERIES.labels(channel, metrics.DELIVERED)
        self._delivery_seconds = metrics.DELIVERY_SECONDS.labels(channel)

    def run(self) -> int:
        stop = stop_on_signals("worker")
        # Before any thread starts (they inherit it): the metrics server's, the lanes'.
        cpu = one_cpu.pin() if self.settings.worker.one_cpu else None
        server = None
        if self.metrics_port:
            server = serve(self.settings.worker.metrics_host, self.metrics_port, lambda: self.consumer.consuming)
        log.info("worker.started", channel=self.channel, metrics_port=self.metrics_port or None, cpu=cpu)
        try:
            self.consumer.run(stop)
        finally:
            self.lanes.shutdown()
            self.fold_lanes.shutdown()
            self.notifier.close()
            if server is not None:
                server.shutdown()
        log.info("worker.stopped", channel=self.channel)
        return 0

    # ---- on the connection thread -----------------------------------------------------------------

    def on_delivery(self, delivery: Delivery) -> None:
        headers = dict(delivery.properties.headers or {})
        try:
            event = parse_alert(delivery.body)
        except UnsupportedSchema as exc:
            self._dead_now(delivery, dead_letters.UNSUPPORTED_SCHEMA, str(exc))
            return
        except ValidationError as exc:
            self._dead_now(delivery, dead_letters.INVALID, _summary(exc))
            return
        target = self.notifier.target(event)
        if self.notifier.may_fold(event):
            self.fold_lanes.submit(target, (delivery, event))
            return
        if not self.lanes.submit(target, [delivery], lambda: self.attempt(delivery, event, target)):
            self._park(delivery, event, target, headers)

    def requeue_waiting(self) -> None:
        """At shutdown: what waits in a lane goes back to the queue untried."""
        for deliveries in self.lanes.cancel_waiting():
            for delivery in deliveries:
                self.consumer.settle(delivery, Settlement(requeue=True))
        for delivery, _ in self.fold_lanes.cancel_waiting():
            self.consumer.settle(delivery, Settlement(requeue=True))

    def _dead_now(self, delivery: Delivery, reason: str, error: str) -> None:
        bound = log.bind(**delivery.log_fields())
        self.consumer.settle(delivery, self._dead(bound, delivery, reason, error, {}))

    def _park(self, delivery: Delivery, event: AlertEvent, target: str, headers: dict[str, Any]) -> None:
        bound = log.bind(event_id=event.event_id, channel=self.channel, attempt=retries.attempt_of(headers))
        delay = self.settings.worker.park_delay
        parked = retries.without_broker_headers(headers)
        parked[names.HEADER_DELAY] = str(delay)
        properties = with_headers(delivery.properties, parked)
        publication = Publication(names.DELAY_EXCHANGE, names.retry_key(self.channel), properties, delay)

        def settled(acked: bool) -> None:
            if acked:
                bound.info("delivery.parked", target=target, seconds=delay, reason="lane congested")

        self.consumer.settle(delivery, Settlement(publication, on_settled=settled))

    # ---- in a lane thread ---------------------------------------------------------------------------

    def run_fold(self, target: str, batch: list[tuple[Delivery, AlertEvent]]) -> Hold:
        """In a fold lane (folds.py): what waited for `target` together. The notifier folds what it
        cannot send one by one in time (a digest); each event's outcome is settled as `attempt` does.
        Returns how the lane holds before its next batch: the notifier's hold after a fold."""
        live = []
        for delivery, event in batch:
            if self.consumer.current(delivery):
                live.append((delivery, event))
            else:
                log.info(
                    "delivery.skipped", **delivery.log_fields(), reason="connection lost; the broker redelivers it"
                )
        if not live:
            return NO_HOLD
        now = datetime.now(UTC)
        foldable = []
        for delivery, event in live:
            headers = dict(delivery.properties.headers or {})
            if age_limit.expired(event, headers, self.settings.retry.max_age, now):
                self.attempt(delivery, event, target)  # dead-lettered there as `expired`
            else:
                foldable.append((delivery, event))
        try:
            outcomes = self.notifier.fold([event for _, event in foldable])
        except Exception as exc:  # a bug must not lose the messages: the broker redelivers them
            log.exception("delivery.fold_crashed", channel=self.channel, target=target, error=type(exc).__name__)
            for delivery, _ in foldable:
                self.consumer.settle_threadsafe(delivery, Settlement(requeue=True))
            return NO_HOLD
        if outcomes is None:
            self._one_by_one(target, foldable)
            return NO_HOLD
        alone = []
        for delivery, event in foldable:
            outcome = outcomes.get(event.event_id, ONE_BY_ONE)
            if outcome == ONE_BY_ONE:
                alone.append((delivery, event))
                continue
            self.consumer.settle_threadsafe(delivery, self._folded(delivery, event, target, outcome))
        self._one_by_one(target, alone)
        return self.notifier.fold_hold()

    def _one_by_one(self, target: str, items: list[tuple[Delivery, AlertEvent]]) -> None:
        """What a fold batch sends alone. One (quiet times) at once, here. More go through the target's
        ordinary lane (`lane_concurrency` at a time, as without folding; one after another here they
        made the worker 3x slower), an incident's events in their order in one task, so another
        contact's copy finds the first one posted and folds into it instead of waiting for it. Returns
        when all are settled: what comes meanwhile waits in the fold lane for the next batch, which the
        storm rule judges with these posts taken from the budget (folds.py)."""
        if len(items) <= 1:
            for delivery, event in items:
                self.attempt(delivery, event, target)
            return

        def task(group: list[tuple[Delivery, AlertEvent]]) -> Callable[[], None]:
            def run() -> None:
                for delivery, event in group:
                    self.attempt(delivery, event, target)

            return run

        groups = _in_order_groups(items)
        # Keyed by the group's deliveries: one cancelled at shutdown is requeued whole (requeue_waiting).
        self.lanes.run_all(target, [([d for d, _ in group], task(group)) for group in groups])

    def _folded(self, delivery: Delivery, event: AlertEvent, target: str, outcome: object) -> Settlement:
        headers = dict(delivery.properties.headers or {})
        attempt = retries.attempt_of(headers)
        bound = log.bind(event_id=event.event_id, channel=self.channel, attempt=attempt, target=target)
        first_at = retries.first_attempt_at(headers, datetime.now(UTC))
        bookkeeping = {names.HEADER_ATTEMPT: attempt, names.HEADER_FIRST_ATTEMPT_AT: first_at}
        if isinstance(outcome, Permanent):
            return self._dead(bound, delivery, dead_letters.PERMANENT, outcome.reason, bookkeeping, target)
        if isinstance(outcome, Retryable):
            return self._retry(bound, delivery, event, attempt, outcome, bookkeeping, target)
        if outcome is not None:  # the notifier answered something unknown: the broker redelivers it
            bound.error("delivery.fold_unknown_outcome", outcome=type(outcome).__name__)
            return Settlement(requeue=True)
        return self._delivered(bound, delivery, attempt, target, 0.0, folded=True)

    def _delivered(
        self, bound: Any, delivery: Delivery, attempt: int, target: str, took: float, folded: bool = False
    ) -> Settlement:
        def settled(acked: bool) -> None:
            if acked:
                self._delivered_count.inc()
                bound.info("delivery.delivered", seconds=round(took, 3), **({"folded": True} if folded else {}))
                self._receipt(delivery, "delivered", attempt, target=target, seconds=round(took, 3))

        return Settlement(on_settled=settled)

    def attempt(self, delivery: Delivery, event: AlertEvent, target: str) -> None:
        headers = dict(delivery.properties.headers or {})
        attempt = retries.attempt_of(headers)
        bound = log.bind(event_id=event.event_id, channel=self.channel, attempt=attempt, target=target)
        if not self.consumer.current(delivery):
            # Its connection is gone, so its outcome could not be acked: sending it now would only
            # add a duplicate of the redelivery the broker makes anyway.
            bound.info("delivery.skipped", reason="connection lost; the broker redelivers it")
            return
        if names.HEADER_REPLAY_COUNT in headers:  # a replayed dead letter: say so on every line
            bound = bound.bind(replay_count=headers[names.HEADER_REPLAY_COUNT])
        try:
            settlement = self._try(bound, delivery, event, target, attempt, headers)
        except Exception as exc:  # a bug must not lose the message: the broker redelivers it
            bound.exception("delivery.crashed", error=type(exc).__name__)
            settlement = Settlement(requeue=True)
        self.consumer.settle_threadsafe(delivery, settlement)

    def _try(
        self,
        bound: Any,
        delivery: Delivery,
        event: AlertEvent,
        target: str,
        attempt: int,
        headers: dict[str, Any],
    ) -> Settlement:
        max_age = self.settings.retry.max_age
        now = datetime.now(UTC)
        first_at = retries.first_attempt_at(headers, now)
        bookkeeping = {names.HEADER_ATTEMPT: attempt, names.HEADER_FIRST_ATTEMPT_AT: first_at}
        if age_limit.expired(event, headers, max_age, now):
            return self._dead(
                bound, delivery, dead_letters.EXPIRED, _expired_error(headers), bookkeeping, target, event
            )
        waited = 0.0 if self.notifier.paces_itself(event) else self.rate_limits.bucket(target).take()
        if waited and age_limit.expired(event, headers, max_age, datetime.now(UTC)):
            return self._dead(
                bound, delivery, dead_letters.EXPIRED, _expired_error(headers), bookkeeping, target, event
            )
        bound.debug("delivery.attempt", redelivered=delivery.redelivered, rate_limited_for=round(waited, 3))
        started = time.monotonic()
        try:
            retries.quick(
                lambda: self.notifier.send(event, delivery.body),
                self.settings.worker.connect_retries,
                self.settings.worker.connect_retry_wait,
            )
        except Permanent as exc:
            return self._dead(bound, delivery, dead_letters.PERMANENT, exc.reason, bookkeeping, target, event)
        except Retryable as exc:
            return self._retry(bound, delivery, event, attempt, exc, bookkeeping, target)
        finally:
            self._delivery_seconds.observe(time.monotonic() - started)
        return self._delivered(bound, delivery, attempt, target, time.monotonic() - started)

    def _retry(
        self,
        bound: Any,
        delivery: Delivery,
        event: AlertEvent,
        attempt: int,
        error: Retryable,
        bookkeeping: dict[str, Any],
        target: str,
    ) -> Settlement:
        retry = self.settings.retry
        if isinstance(error, Deferred):
            return self._defer(bound, delivery, event, error, bookkeeping, target)
        if attempt >= retry.max_attempts:
            return self._dead(bound, delivery, dead_letters.MAX_ATTEMPTS, error.reason, bookkeeping, target, event)
        delay = retries.delay_for(attempt, retry.delays, error.after)
        headers = dict(delivery.properties.headers or {})
        if age_limit.remaining(event, headers, retry.max_age, datetime.now(UTC)) < delay:
            reason = f"{error.reason} (the next try in {delay}s would be past retry.max_age)"
            return self._dead(bound, delivery, dead_letters.EXPIRED, reason, bookkeeping, target, event)
        headers = retries.without_broker_headers(headers)
        headers.update(bookkeeping)
        headers[names.HEADER_ATTEMPT] = attempt + 1
        headers[names.HEADER_LAST_ERROR] = error.reason[: dead_letters.ERROR_MAX]
        headers[names.HEADER_DELAY] = str(delay)
        properties = with_headers(delivery.properties, headers)
        publication = Publication(names.DELAY_EXCHANGE, names.retry_key(self.channel), properties, delay)

        def settled(acked: bool) -> None:
            if acked:
                metrics.DELIVERIES.labels(self.channel, metrics.RETRIED).inc()
                metrics.RETRIES.labels(self.channel).inc()
                bound.warning("delivery.retry_scheduled", error=error.reason, retry_in=delay, retry_after=error.after)
                self._receipt(delivery, "retrying", attempt, target=target, error=error.reason, retry_in=delay)

        return Settlement(publication, on_settled=settled)

    def _defer(
        self,
        bound: Any,
        delivery: Delivery,
        event: AlertEvent,
        error: Deferred,
        bookkeeping: dict[str, Any],
        target: str,
    ) -> Settlement:
        """Back to the broker for `error.after` seconds without counting an attempt: the event waits for
        another delivery (its conversation's root), it did not fail. The age limit still ends it."""
        delay = retries.bounded_seconds(error.after or 1.0)
        headers = dict(delivery.properties.headers or {})
        if age_limit.remaining(event, headers, self.settings.retry.max_age, datetime.now(UTC)) < delay:
            reason = f"{error.reason} (waited until retry.max_age)"
            return self._dead(bound, delivery, dead_letters.EXPIRED, reason, bookkeeping, target, event)
        headers = retries.without_broker_headers(headers)
        headers.update(bookkeeping)
        headers[names.HEADER_DELAY] = str(delay)
        properties = with_headers(delivery.properties, headers)
        publication = Publication(names.DELAY_EXCHANGE, names.retry_key(self.channel), properties, delay)

        def settled(acked: bool) -> None:
            if acked:
                bound.info("delivery.deferred", reason=error.reason, retry_in=delay)

        return Settlement(publication, on_settled=settled)

    # ---- either thread --------------------------------------------------------------------------------

    def _dead(
        self,
        bound: Any,
        delivery: Delivery,
        reason: str,
        error: str,
        bookkeeping: dict[str, Any],
        target: str | None = None,
        event: AlertEvent | None = None,
    ) -> Settlement:
        now = datetime.now(UTC)
        headers = delivery.properties.headers or {}
        to = [] if event is None else fallback.channels_for(event, headers, reason, self.fallback_channels)
        copies = [] if event is None else [fallback.copy_for(event, channel, reason, error, now) for channel in to]
        before = tuple(
            Publication(names.EVENTS_EXCHANGE, names.retry_key(c.channel), fallback.properties(c), body=c.to_json())
            for c in copies
        )
        if to:  # the dead letter remembers it, so that its replay sends no second copy
            bookkeeping = {**bookkeeping, names.HEADER_FALLBACK_SENT: ",".join(to)}
        properties = dead_letters.properties(delivery.properties, reason, error, now, bookkeeping)
        publication = Publication(names.DEAD_EXCHANGE, names.notify_key(self.channel), properties)

        def settled(acked: bool) -> None:
            if acked:
                metrics.DELIVERIES.labels(self.channel, metrics.DEAD).inc()
                metrics.DEAD_LETTERS.labels(self.channel, reason).inc()
                bound.error("delivery.dead_lettered", reason=reason, error=error)
                for copy in copies:
                    metrics.FALLBACKS.labels(self.channel, copy.channel).inc()
                    bound.warning("delivery.fallback_sent", fallback=copy.channel, fallback_event_id=copy.event_id)
                attempt = retries.attempt_of(headers)
                self._receipt(delivery, "dead", attempt, target=target, error=error, dead_reason=reason)

        return Settlement(publication, before=before, on_settled=settled)

    def _receipt(self, delivery: Delivery, outcome: receipts.Outcome, attempt: int, **details: Any) -> None:
        """On the connection thread, after the outcome is settled: tell `alertq test`, if it asked."""
        queue = receipts.report_to(delivery.properties.headers)
        if queue is None:
            return
        event_id = delivery.properties.message_id or ""
        receipt = Receipt(event_id=event_id, channel=self.channel, outcome=outcome, attempt=attempt, **details)
        self.consumer.send_receipt(queue, receipt.encode())


Item = TypeVar("Item")


def _in_order_groups(items: list[tuple[Item, AlertEvent]]) -> list[list[tuple[Item, AlertEvent]]]:
    """`items` in groups to run side by side, each in its order: an incident's events together, except
    that the same notification for the same contact again (a re-notification, which is posted again
    anyway) starts another group of the incident, so a batch of one incident's repeats is not one
    long queue."""
    groups: list[list[tuple[Item, AlertEvent]]] = []
    of_incident: dict[str, list[list[tuple[Item, AlertEvent]]]] = {}
    times: dict[tuple[str, str, str], int] = {}  # how often each (incident, contact, notification) came so far
    for delivery, event in items:
        incident = incident_of(event).key
        told = (incident, contact_of(event), fingerprint(event))  # the dedupe's own identity of a copy
        # Its n-th time goes to the incident's n-th group: the first one that does not have it yet.
        seen = times.get(told, 0)
        times[told] = seen + 1
        mine = of_incident.setdefault(incident, [])
        if seen == len(mine):
            mine.append([])
            groups.append(mine[-1])
        mine[seen].append((delivery, event))
    return groups


def _expired_error(headers: dict[str, Any]) -> str:
    last = headers.get(names.HEADER_LAST_ERROR)
    if isinstance(last, bytes):
        last = last.decode(errors="replace")
    too_old = "older than retry.max_age" + (" since its replay" if age_limit.replayed_at(headers) else "")
    return f"{too_old}; last error: {last}" if last else too_old


def _summary(exc: ValidationError) -> str:
    """Which fields were wrong, not the values (they may be large, or secret)."""
    problems = [f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:5]]
    return "not a valid alertq.alert/1: " + "; ".join(problems)
