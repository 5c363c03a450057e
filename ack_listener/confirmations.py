"""The forwarder's read-backs: proof that the core applied an action, checked beside the queue.

Once the core has a command (the input is acked then), the action is handed here and the forwarder
takes the next one at once. One thread reads each pending action's object back every
`ack_target.confirm_every` seconds until the core shows it applied (`proof.applied`) and then tells
the chat; after `confirm_within` seconds without it, or at once when the core says it does not know
the object, the chat is told it was NOT applied and why (`proof.why_not`), and the button's claim is
released so a new click may try. Why a thread of its own: a core that is slow to apply, or never
applies, would otherwise hold every action behind it for up to `confirm_within` seconds each.

At shutdown the pending read-backs are dropped with a log line: the commands were delivered; only
the chat's "confirmed" is lost, never an action.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ack_listener import chat_reply, proof
from ack_listener.used_buttons import UsedButtons, claim_key
from cores.base import ProblemState, Target
from schemas.ack import AckMessage
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack_forwarder")


@dataclass(order=True)
class _Pending:
    next_check: float
    order: int
    ack: AckMessage = field(compare=False)
    sent_at: float = field(compare=False)  # wall clock, for proof.applied
    deadline: float = field(compare=False)  # monotonic


class Confirmations:
    def __init__(self, settings: Settings, target: Target, buttons: Callable[[], UsedButtons]) -> None:
        self.settings = settings
        self.target = target
        self._buttons = buttons
        self._pending: list[_Pending] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ack-confirmations", daemon=True)
        self._thread.start()

    def add(self, ack: AckMessage, sent_at: float) -> None:
        """Confirm `ack`, sent to the core at `sent_at` (time.time()), and tell the chat how it went."""
        target = self.settings.ack_target
        if target.kind == "nagios" and target.status_file is None:
            log.warning("ack_forwarder.not_confirmed", ack_id=ack.ack_id, reason="no status_file")
            chat_reply.tell(self.settings, ack, chat_reply.unverifiable_text(ack))
            return
        now = time.monotonic()
        pending = _Pending(now, next(self._order), ack, sent_at, now + target.confirm_within)
        with self._changed:
            heapq.heappush(self._pending, pending)
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            left = list(self._pending)
            self._pending.clear()
            self._changed.notify()
        for pending in left:
            log.warning("ack_forwarder.not_confirmed", ack_id=pending.ack.ack_id, reason="stopping")
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (not self._pending or self._pending[0].next_check > time.monotonic()):
                    wait = self._pending[0].next_check - time.monotonic() if self._pending else None
                    self._changed.wait(timeout=wait)
                if self._closed:
                    return
                pending = heapq.heappop(self._pending)
            try:
                again = self._check(pending)
            except Exception:  # a bug must not end the read-backs of every other action
                log.exception("ack_forwarder.confirm_failed", ack_id=pending.ack.ack_id)
                again = False
            if again:
                pending.next_check = min(
                    time.monotonic() + self.settings.ack_target.confirm_every, max(pending.deadline, time.monotonic())
                )
                with self._changed:
                    if not self._closed:
                        heapq.heappush(self._pending, pending)

    def _check(self, pending: _Pending) -> bool:
        """One read-back; True: look again later."""
        ack = pending.ack
        state = self._state(ack)
        if proof.applied(ack, state, pending.sent_at):
            log.info(
                "ack_forwarder.confirmed",
                ack_id=ack.ack_id,
                action=ack.action,
                host_id=ack.host_id,
                service_id=ack.service_id,
                seconds=round(time.time() - pending.sent_at, 1),
            )
            if ack.action != "acknowledge":
                self._release_claim(ack)
            if ack.action == "unacknowledge":
                # The problem may be acknowledged again: its Acknowledge buttons work once more.
                self._buttons().clear(claim_key(ack.host_id, ack.service_id, ack.problem_id, ack.event_id))
            chat_reply.tell(self.settings, ack, chat_reply.confirmed_text(ack))
            return False
        known: bool | None = None
        if state is None:
            known = self.target.object_known(ack.host_id, ack.service_id)
        if known is not False and time.monotonic() < pending.deadline:
            return True  # not yet; a core it does not know will never apply it
        said = proof.why_not(ack, state, known)
        log.warning(
            "ack_forwarder.not_confirmed",
            ack_id=ack.ack_id,
            action=ack.action,
            host_id=ack.host_id,
            service_id=ack.service_id,
            reason=said,
        )
        self._release_claim(ack)
        within = self.settings.ack_target.confirm_within
        chat_reply.tell(self.settings, ack, chat_reply.unconfirmed_text(ack, said, within))
        return False

    def _state(self, ack: AckMessage) -> ProblemState | None:
        try:
            return self.target.problem_state(ack.host_id, ack.service_id)
        except Exception:  # the contract says it never raises; a bug must not stop the read-backs
            log.exception("ack_forwarder.problem_check_failed", ack_id=ack.ack_id)
            return None

    def _release_claim(self, ack: AckMessage) -> None:
        key = claim_key(ack.host_id, ack.service_id, ack.problem_id, ack.event_id, ack.action)
        self._buttons().release(key, ack.ack_id)
