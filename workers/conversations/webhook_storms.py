"""Alert storms in webhook mode: what one chat webhook cannot take one by one goes out as digest posts.

The worker hands a target's waiting notifications over as one batch (workers/folds.py), as in API mode.
Each notification counts once however many contacts the core sent it to (the copies of one incident's
notification for one destination are one line). When the lines need more posts than the webhook's
`rate_limit` lets out within `fold.window` seconds (or the target is still in a storm: `StormRule`),
each destination's lines go out as digest posts: the headline with counts ("37 problems on 12 hosts:
30 CRITICAL, 7 WARNING", "500 recoveries on 50 hosts"), then a line per notification, split into parts
as in API mode. Problems, recoveries and acknowledgements fold alike: a webhook returns no post id, so
there is nothing to edit later.

Every event is accounted for: with the dedupe window on, each line is claimed in the store (the same
claim `WebhookFolds` makes for a post of its own) before the digest is posted, so a copy another batch
already posted is done, not listed again, and a copy being posted elsewhere waits (`Deferred`). The
events are done when every part of their destination's digest was posted; a failed post releases the
claims and every event of that destination is retried. A webhook cannot be asked what it showed, so a
worker that dies between two parts has the whole digest re-sent (parts shown twice, nothing missing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from delivery.chat.outcomes import Deferred
from delivery.outcomes import DeliveryError
from schemas.alert import AlertEvent
from schemas.incident import incident_of
from workers.conversations import digest
from workers.conversations.flow import fingerprint
from workers.conversations.folding import WebhookFolds
from workers.conversations.store import State, WebhookDecision
from workers.folds import StormRule

log = structlog.get_logger("alertq.conversations")

PostPart = Callable[[str, digest.PartView], None]  # (destination, the part) → posted, or DeliveryError


@dataclass
class _Line:
    destination: str
    events: list[AlertEvent]  # the first, then other contacts' copies


class WebhookStorms:
    def __init__(self, chat: str, rule: StormRule, max_items: int, dedupe: WebhookFolds | None) -> None:
        self.chat = chat
        self.rule = rule
        self.max_items = max_items
        self.dedupe = dedupe

    def fold(
        self, target: str, events: list[AlertEvent], destination_of: Callable[[AlertEvent], str], post: PostPart
    ) -> dict[str, object] | None:
        """What became of each event of one target's batch; None: nothing worth folding, one by one."""
        lines: dict[tuple[str, str, str], _Line] = {}
        for event in events:
            destination = destination_of(event)
            key = (destination, incident_of(event).key, fingerprint(event))
            lines.setdefault(key, _Line(destination, [])).events.append(event)
        if not self.rule.worth_folding(target, len(lines)):
            return None
        outcomes: dict[str, object] = {}
        by_destination: dict[str, list[_Line]] = {}
        for (destination, incident, print_), line in lines.items():
            decision = self._claim(destination, incident, print_, line.events[0])
            if decision in (WebhookDecision.FOLD, WebhookDecision.DONE):
                outcomes.update({e.event_id: None for e in line.events})  # posted already, by another batch
            elif decision is WebhookDecision.WAIT:
                wait = float(self.dedupe.settings.follow_up_delay) if self.dedupe else 1.0
                outcomes.update(
                    {e.event_id: Deferred("another contact's copy is being posted", wait) for e in line.events}
                )
            else:
                by_destination.setdefault(destination, []).append(line)
        for destination, mine in by_destination.items():
            ids = [e.event_id for line in mine for e in line.events]
            try:
                self._post(target, destination, mine, post)
            except DeliveryError as exc:
                self._release(mine)
                outcomes.update({event_id: exc for event_id in ids})
                continue
            self._posted(mine)
            outcomes.update({event_id: None for event_id in ids})
        return outcomes

    def _post(self, target: str, destination: str, lines: list[_Line], post: PostPart) -> None:
        leads = [line.events[0] for line in lines]
        parts = digest.parts_for([digest.line_length(self.chat, e) for e in leads], self.max_items, self.chat)
        count = parts[-1] + 1
        for part in range(count):
            mine = tuple(digest.Line(e, State.OPEN, None, None) for e, p in zip(leads, parts, strict=True) if p == part)
            self.rule.pace(target)  # the webhook's rate limit, which its posts one by one take from too
            post(destination, digest.PartView(mine, part, count))
            log.info("digest.webhook_posted", destination=destination, part=part, of=count, lines=len(mine))

    # -- the dedupe's claims (none without a store) ----------------------------------------------------

    def _claim(self, destination: str, incident: str, print_: str, event: AlertEvent) -> WebhookDecision | None:
        if self.dedupe is None:
            return None
        try:
            return self.dedupe.claim(destination, incident, print_, event)
        except Exception as exc:  # the store's trouble must never cost a notification: list it
            log.warning("delivery.dedupe_unavailable", event_id=event.event_id, error=type(exc).__name__)
            return None

    def _release(self, lines: list[_Line]) -> None:
        if self.dedupe is None:
            return
        for line in lines:
            first = line.events[0]
            with contextlib.suppress(Exception):
                self.dedupe.store.webhook_release(
                    line.destination, incident_of(first).key, fingerprint(first), first.event_id
                )

    def _posted(self, lines: list[_Line]) -> None:
        if self.dedupe is None:
            return
        now = self.dedupe.clock()
        for line in lines:
            first = line.events[0]
            try:
                self.dedupe.store.webhook_posted(
                    line.destination, incident_of(first).key, fingerprint(first), first.event_id, now
                )
            except Exception as exc:  # posted: other copies wait for the lease and post too, not lost
                log.warning("delivery.dedupe_unavailable", event_id=first.event_id, error=type(exc).__name__)
