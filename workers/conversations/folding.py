"""Webhook mode: one post per destination for one notification, however many contacts the core sent it to.

The core runs the notification command once per contact; when their copies land in the same chat
destination (the same webhook and channel) they would be the same post several times. A copy is posted
unless another contact's copy of the same notification (incident, type, number, escalation step),
created within `dedupe_window` seconds of it, was posted there already. The first copy claims the post
in the conversations' store (a lease, as in API mode): another contact's copy that comes while it is
being posted waits (`Deferred`) and then folds into it, or posts it itself if the claimer died. The same
contact told again (a new event id) is posted again, as ever; a redelivered copy that was posted is not.
Webhooks return no post id, so the post cannot name the contacts folded into it.

The store only saves posts: when it cannot be opened or used (a read-only disk, a database that is
down), the copy is posted as before this dedupe existed, with a warning, never held back.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import structlog

from delivery.chat.outcomes import Deferred
from schemas.alert import AlertEvent
from schemas.channels import ConversationSettings
from schemas.incident import incident_of
from workers.conversations.flow import contact_of, fingerprint
from workers.conversations.store import ConversationStore, WebhookDecision

log = structlog.get_logger("alertq.conversations")


class WebhookFolds:
    def __init__(
        self,
        settings: ConversationSettings,
        window: float,
        store: ConversationStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.window = window
        self._store = store
        self._opening = threading.Lock()
        self.clock = clock

    @property
    def store(self) -> ConversationStore:
        # Opened on the first chat notification, not when the worker starts (nor in `alertq test`).
        # Under a lock: a fold lane's batch runs on several lane threads, which must share one store.
        if self._store is None:
            with self._opening:
                if self._store is None:
                    self._store = ConversationStore(self.settings.store)
        return self._store

    def post(self, destination: str, event: AlertEvent, send: Callable[[], object]) -> None:
        """`send` the event's post unless another contact's copy was posted already."""
        incident = incident_of(event).key
        print_ = fingerprint(event)
        try:
            decision = self.claim(destination, incident, print_, event)
        except Exception as exc:  # the store's trouble must never cost a notification
            log.warning("delivery.dedupe_unavailable", event_id=event.event_id, error=_describe(exc))
            send()
            return
        if decision in (WebhookDecision.FOLD, WebhookDecision.DONE):
            log.info("delivery.folded", event_id=event.event_id, destination=destination, why=decision.value)
            return
        if decision is WebhookDecision.WAIT:
            raise Deferred("another contact's copy is being posted", float(self.settings.follow_up_delay))
        if decision is WebhookDecision.AGAIN:
            # Not this copy's claim: nothing to mark posted or to release (both would change no row),
            # so a transaction fewer.
            send()
            return
        try:
            send()
        except BaseException:
            with contextlib.suppress(Exception):
                self.store.webhook_release(destination, incident, print_, event.event_id)
            raise
        try:
            self.store.webhook_posted(destination, incident, print_, event.event_id, self.clock())
        except Exception as exc:  # posted: other copies wait for the lease and post too, not lost
            log.warning("delivery.dedupe_unavailable", event_id=event.event_id, error=_describe(exc))

    def claim(self, destination: str, incident: str, print_: str, event: AlertEvent) -> WebhookDecision:
        """Claim the post of `event`'s copy at `destination` in the store (a post of its own, or a line
        of a webhook digest: workers/conversations/webhook_storms.py); raises what the store raises."""
        return self.store.webhook_claim(
            destination,
            incident,
            print_,
            event_id=event.event_id,
            contact=contact_of(event),
            created=event.created_at.timestamp(),
            now=self.clock(),
            lease=self.settings.claim_lease,
            window=self.window,
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _describe(exc: Exception) -> str:
    """The error's kind and first line: database errors name files and hosts, never passwords."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
