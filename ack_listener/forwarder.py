"""`alertq ack-forwarder`: queue `alertq.acks` → the configured target, one action at a time
(Acknowledge, Snooze, Recheck now, Unacknowledge: `Target.apply`), then proof that the core applied it.

One pika BlockingConnection in the main thread, prefetch 1. A target that fails retryably is tried
again with doubling waits (`retry_wait`, capped at `max_retry_wait`, or the target's Retry-After)
until `ack_target.give_up_after` seconds have passed since the first try (or `attempts` tries, if
set). The waits are held here, in `connection.sleep` slices that keep the heartbeats flowing and
notice SIGTERM, not in the broker's delay queues: there is one target, so while it is down every
ack behind this one would fail too and waiting in line costs nothing, the order of acks is kept,
and a 10-minute budget stays well below RabbitMQ's 30-minute consumer timeout (`give_up_after` is
capped at 25 minutes). What gives up (or is invalid, or permanent) goes to `alertq.dead` with
`alertq-dead-reason`, confirmed, and only then is the input acked and the chat told. A dead letter
the broker refuses → the input is requeued, never dropped. SIGTERM: the current ack goes back to
the queue (between tries) or is finished (during a try), exit 0.

Before each try of an ack that names its problem (`problem_id`, `problem_since`), the target is asked
whether that problem is still the core's (`ack_listener/problem.py`): a button for an earlier problem
is not forwarded and the chat is told so; a problem that recovered or is acknowledged already is not
acknowledged again. A core that cannot tell does not stop the ack (as before binding). An ack that
gives up releases its claim in the state store (`used_buttons.py`), so a later click may try again.
The chat hears the failure in words (`cores.base.in_words`); the detail goes to the log and the
dead letter's header. What each action needs of the problem is `problem.GOES_AHEAD` (Unacknowledge
needs an acknowledged one); a click that is not sent is told why (recovered, earlier problem, …).

Proof, not hope: once the core has the command (the input is acked then: the command is delivered),
the action goes to `confirmations.py`, which reads the object's state back every `confirm_every`
seconds beside the queue (the next action does not wait for it) and only then tells the chat
"acknowledged by @alice"; after `confirm_within` seconds without it, or at once when the core says it
does not know the object, the chat is told it was NOT applied and why, and the button's claim is
released so a new click may try. A target that cannot show state (Nagios without `status_file`) gets
no proof: the chat is told the command was sent but cannot be confirmed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError
from pika.spec import Basic
from pydantic import ValidationError

from ack_listener import chat_reply
from ack_listener.confirmations import Confirmations
from ack_listener.problem import Binding, Verdict, goes_ahead, judge
from ack_listener.used_buttons import UsedButtons, claim_key
from broker import dead_letters, names, topology
from broker.connection import connect
from broker.publisher import ConfirmedPublisher, PublishError
from broker.session import Sessions
from broker.shutdown import stop_on_signals
from cores import make_target
from cores.base import Permanent, Retryable, in_words
from schemas.ack import AckMessage, parse_ack
from schemas.settings import Settings
from schemas.versioning import UnsupportedSchema

log = structlog.get_logger("alertq.ack_forwarder")

SLEEP_SLICE = 1.0  # longest stretch between two looks at SIGTERM while waiting to retry


class GaveUp(Exception):
    """`error` is the detail for the log and the dead letter; `said` the same in words, for the chat."""

    def __init__(self, reason: str, error: str, said: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error
        self.said = said


class NotForwarded(Exception):
    """The core's problem is not the button's any more (or is acknowledged already): nothing to send."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.value)
        self.verdict = verdict


class Forwarder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target = make_target(settings.ack_target)
        self._connection: BlockingConnection | None = None
        self._publisher: ConfirmedPublisher | None = None
        self._stop = threading.Event()
        self._used_buttons: UsedButtons | None = None
        self._confirmations: Confirmations

    def run(self) -> int:
        self._stop = stop_on_signals("ack_forwarder")
        sessions = Sessions(self.settings, "ack_forwarder", self._stop)
        if self.settings.ack_target.kind == "nagios" and self.settings.ack_target.status_file is None:
            log.warning(
                "ack_forwarder.no_status_file",
                effect="acks are not checked against the problem of their button (set ack_target.status_file)",
            )
        # The read-backs have a target of their own: the cores' clients keep connections that are
        # not for two threads at once.
        confirm_target = make_target(self.settings.ack_target)
        self._confirmations = Confirmations(self.settings, confirm_target, self._buttons)
        try:
            sessions.run(lambda: self._session(sessions))
        finally:
            self._confirmations.close()
            confirm_target.close()
            self.target.close()
            if self._used_buttons is not None:
                self._used_buttons.close()
        log.info("ack_forwarder.stopped")
        return 0

    def _session(self, sessions: Sessions) -> None:
        connection = self._connection = connect(self.settings.broker, sessions.client_name)
        sessions.connected()
        try:
            publish_channel = connection.channel()
            topology.declare(publish_channel, self.settings)
            self._publisher = ConfirmedPublisher(publish_channel)
            consume = connection.channel()
            consume.basic_qos(prefetch_count=1)
            consume.basic_consume(names.ACKS_QUEUE, self._on_message)
            log.info("ack_forwarder.consuming", queue=names.ACKS_QUEUE, target=self.target.name)
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.25)
            connection.close()
        finally:
            if connection.is_open:
                with contextlib.suppress(AMQPError):
                    connection.close()
            self._connection = None

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: pika.BasicProperties, body: bytes
    ) -> None:
        ack: AckMessage | None = None
        try:
            ack = _parse(body)
            sent_at = self._forward(ack)
        except GaveUp as gave_up:
            if not self._dead_letter(method, properties, body, gave_up):
                channel.basic_nack(method.delivery_tag, requeue=True)
                return
            channel.basic_ack(method.delivery_tag)
            if ack is not None:
                self._release_claim(ack)
                chat_reply.tell_failure(self.settings, ack, gave_up.said)
            return
        except NotForwarded as skipped:
            assert ack is not None
            channel.basic_ack(method.delivery_tag)
            log.info(
                "ack_forwarder.not_forwarded",
                reason=skipped.verdict.value,
                ack_id=ack.ack_id,
                host_id=ack.host_id,
                service_id=ack.service_id,
                problem_id=ack.problem_id,
            )
            self._release_claim(ack)
            what = chat_reply.subject(ack.host_id, ack.service_id)
            chat_reply.tell(self.settings, ack, chat_reply.not_sent_text(skipped.verdict, what, ack.action))
            return
        except _Stopping:
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        channel.basic_ack(method.delivery_tag)
        log.info(
            "ack_forwarder.acknowledged" if ack.action == "acknowledge" else "ack_forwarder.sent",
            ack_id=ack.ack_id,
            action=ack.action,
            target=self.target.name,
            host_id=ack.host_id,
            service_id=ack.service_id,
            author=ack.author,
        )
        self._confirmations.add(ack, sent_at)

    def _forward(self, ack: AckMessage) -> float:
        target = self.settings.ack_target
        give_up_at = time.monotonic() + target.give_up_after
        attempt = 0
        while True:
            attempt += 1
            self._check_problem(ack)
            try:
                sent_at = time.time()
                self.target.apply(ack)
                return sent_at
            except Permanent as exc:
                raise GaveUp(dead_letters.PERMANENT, str(exc), in_words(exc)) from None
            except Exception as exc:  # a bug in a target must not crash-loop the queue: retry, then dead
                error = str(exc) if isinstance(exc, Retryable) else f"unexpected {type(exc).__name__}"
                if not isinstance(exc, Retryable):
                    log.exception("ack_forwarder.target_failed", ack_id=ack.ack_id)
                after = exc.after if isinstance(exc, Retryable) else None
                left = give_up_at - time.monotonic()
                if left <= 0 or (target.attempts is not None and attempt >= target.attempts):
                    said = f"gave up after {attempt} attempts: {in_words(exc)}"
                    raise GaveUp(dead_letters.MAX_ATTEMPTS, f"{attempt} attempts; last: {error}", said) from None
                backoff = target.retry_wait * 2 ** min(attempt - 1, 20)
                # the last try lands on the deadline rather than giving up early
                wait = min(after if after is not None else backoff, target.max_retry_wait, left)
                log.warning("ack_forwarder.retrying", ack_id=ack.ack_id, attempt=attempt, error=error, retry_in=wait)
                self._wait(wait)

    def _check_problem(self, ack: AckMessage) -> None:
        """Raise `NotForwarded` unless the button's problem is still the core's and in the state the
        action needs (or the core cannot tell). Acks that name no problem are not checked."""
        binding = Binding.of(ack.problem_id, ack.problem_since)
        if not binding.known:
            return
        try:
            state = self.target.problem_state(ack.host_id, ack.service_id)
        except Exception:  # the contract says it never raises; a bug must not cost the ack
            log.exception("ack_forwarder.problem_check_failed", ack_id=ack.ack_id)
            return
        verdict = judge(binding, state)
        if not goes_ahead(ack.action, verdict):
            raise NotForwarded(verdict)

    def _buttons(self) -> UsedButtons:
        if self._used_buttons is None:
            self._used_buttons = UsedButtons(self.settings.state_store)
        return self._used_buttons

    def _release_claim(self, ack: AckMessage) -> None:
        key = claim_key(ack.host_id, ack.service_id, ack.problem_id, ack.event_id, ack.action)
        self._buttons().release(key, ack.ack_id)

    def _wait(self, seconds: float) -> None:
        """Wait between tries with the heartbeats flowing; SIGTERM hands the ack back to the queue."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not self._stop.is_set():
            if self._connection is None:
                self._stop.wait(min(left, SLEEP_SLICE))
            else:
                self._connection.sleep(min(left, SLEEP_SLICE))
        if self._stop.is_set():
            raise _Stopping from None

    def _dead_letter(
        self, method: Basic.Deliver, properties: pika.BasicProperties, body: bytes, gave_up: GaveUp
    ) -> bool:
        assert self._publisher is not None
        dead = dead_letters.properties(properties, gave_up.reason, gave_up.error, datetime.now(UTC))
        try:
            self._publisher.publish(names.DEAD_EXCHANGE, method.routing_key, body, dead)
        except PublishError as exc:
            log.error("ack_forwarder.dead_letter_refused", error=str(exc), message_id=properties.message_id)
            return False
        log.error(
            "ack_forwarder.dead_lettered",
            message_id=properties.message_id,
            reason=gave_up.reason,
            error=gave_up.error,
        )
        return True


class _Stopping(Exception):
    """SIGTERM between tries: hand the ack back to the queue for the next forwarder."""


def _parse(body: bytes) -> AckMessage:
    try:
        return parse_ack(body)
    except UnsupportedSchema as exc:
        raise GaveUp(dead_letters.UNSUPPORTED_SCHEMA, str(exc), "its message is of an unsupported version") from None
    except ValidationError as exc:
        error = f"not a valid alertq.ack message: {exc.error_count()} errors"
        raise GaveUp(dead_letters.INVALID, error, "its message is not valid") from None
