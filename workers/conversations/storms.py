"""Alert storms in API mode: what one destination cannot take one by one goes out as digests.

The worker hands a destination's waiting notifications over as one batch (workers/folds.py); `fold`
answers, per event, what became of it. Read it top-down:

1. Events already in a digest: posted → done (a redelivery); not posted and its worker's lease ran out
   (it died mid-digest) → this batch posts the parts still missing, the same parts as before (they were
   fixed when the digest was made), so nothing is posted twice; claimed by a live worker → wait.
2. The rest is sorted: a PROBLEM of an incident with no open conversation is a new line (the copies for
   other contacts, and re-notifications in the same batch, fold into the same line: per-contact dedupe
   before folding); an acknowledgement or recovery of an incident whose root is a digest line is a
   follow-up of that digest; anything else goes one by one (its conversation's own thread).
3. Worth folding? Only when the posts the batch needs one by one are more than the chat's rate budget
   lets out within `fold.window` seconds; else everything goes one by one, as without folding: a
   single problem in quiet times is posted alone, at once. Once a destination is in a storm (it got a
   digest less than `fold.hold` + `fold.window` seconds ago), new problems and follow-ups of digest
   lines are always folded, even one; so are new problems once more than `fold.max_alone` would have
   gone out alone within `fold.hold` seconds and spent the chat's burst (a storm that trickles in at
   the chat's own rate). The worker's lane held them
   (workers/folds.py), and the storm is not over just because the core hands it over slowly.
4. New lines become a digest: made in the store first (every event id in exactly one digest, the split
   into parts fixed), then each part is posted and recorded with its lines' conversations in one
   transaction; the batch's events are done only when every part is posted. A failed post releases
   the digest: its events are retried, and whoever holds them next posts the parts still missing.
5. Follow-ups of one digest part: the store's state of each incident changes (as one by one), then the
   part is edited once (lines marked, headline counts). Its thread gets a reply for acknowledgements
   (people acted) and one when its last open line closes; the recoveries of a storm in between are
   shown by the edits alone: a reply per batch and part would be the flood folding exists to prevent.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import structlog

from delivery.chat.outcomes import Deferred
from delivery.outcomes import DeliveryError
from schemas.alert import AlertEvent
from schemas.channels import FoldSettings
from schemas.incident import incident_of
from workers.channels.base import ONE_BY_ONE
from workers.conversations import digest
from workers.conversations.chats import PostRef
from workers.conversations.destination import Destination
from workers.conversations.flow import Conversations, fingerprint
from workers.conversations.store import Claim, DigestItem, Member, NewMember, State
from workers.folds import StormWatch

log = structlog.get_logger("alertq.conversations")

FOLLOW_UPS = frozenset({"ACKNOWLEDGEMENT", "RECOVERY"})


@dataclass
class _Sorted:
    lines: dict[str, list[AlertEvent]] = field(default_factory=dict)  # incident key → its events
    follow_ups: dict[tuple[int, int], list[tuple[int, AlertEvent]]] = field(default_factory=dict)
    one_by_one: list[AlertEvent] = field(default_factory=list)


class Storms:
    def __init__(
        self,
        conversations: Conversations,
        settings: FoldSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conversations = conversations
        self.chat = conversations.chat
        self.store = conversations.store
        self.settings = settings
        self.clock = clock
        self.owner = f"worker-{uuid.uuid4().hex[:12]}"  # this process, as a digest's claimer
        self._watch = StormWatch(settings)

    def fold(self, events: list[AlertEvent]) -> dict[str, object] | None:
        """What became of each event of one destination's batch; None: nothing worth folding, deliver
        them one by one."""
        if not events:
            return {}
        destination = self.chat.destination(events[0])
        outcomes: dict[str, object] = {}
        lease = self.conversations.settings.claim_lease
        resend: dict[int, list[str]] = {}
        for event_id, record in self.store.digests_of([e.event_id for e in events]).items():
            if record.posted_at is not None:
                outcomes[event_id] = None
            elif record.id in resend or self.store.take_digest(record.id, self.owner, self.clock(), lease):
                resend.setdefault(record.id, []).append(event_id)
            else:
                outcomes[event_id] = Deferred("its digest is being posted by another worker", self._wait())
        rest = [
            e for e in events if e.event_id not in outcomes and not any(e.event_id in ids for ids in resend.values())
        ]
        rest = self._join_pending(destination, rest, resend, outcomes)
        sorted_ = self._sort(destination, rest)
        needed = len(sorted_.lines) + sum(len(group) for group in sorted_.follow_ups.values())
        needed += len(sorted_.one_by_one)
        now = self.clock()
        capacity = self.chat.post_capacity(destination, self.settings.window)
        key = destination.key
        storming = self._watch.storming(key, now) or (
            bool(sorted_.lines) and self._watch.trickle(key, now, len(sorted_.lines), capacity)
        )
        room = 1 if storming else capacity
        # In a storm even one new problem or one follow-up takes the digest path: a lone root would cost
        # a post now and an edit and a reply when it recovers, a digest line one post and one edit.
        worth = bool(resend) or needed > room or (storming and not sorted_.one_by_one)
        if not worth:
            self._watch.went_alone(key, now, len(sorted_.lines))
            if not outcomes:
                return None
            return {**outcomes, **{event.event_id: ONE_BY_ONE for event in rest}}
        self._watch.folded(key, now)
        for digest_id, event_ids in resend.items():
            log.warning("digest.taken_over", digest=digest_id, destination=destination.key, events=len(event_ids))
            self._settle(outcomes, event_ids, partial(self._post, digest_id, destination, True))
        if sorted_.lines:
            self._new_digest(destination, sorted_, outcomes)
        for (digest_id, part), group in sorted_.follow_ups.items():
            self._follow_ups(digest_id, part, group, outcomes)
        for event in sorted_.one_by_one:
            outcomes[event.event_id] = ONE_BY_ONE
        return outcomes

    def _join_pending(
        self,
        destination: Destination,
        events: list[AlertEvent],
        resend: dict[int, list[str]],
        outcomes: dict[str, object],
    ) -> list[AlertEvent]:
        """A PROBLEM whose incident has a line in a digest not fully posted (its worker died, or its post
        failed) joins that line, so that the problem is shown once; the rest is returned."""
        rest = []
        lease = self.conversations.settings.claim_lease
        for event in events:
            pending = None
            if event.notification_type == "PROBLEM":
                pending = self.store.pending_line(destination.key, incident_of(event).key)
            if pending is None:
                rest.append(event)
            elif pending.id in resend or self.store.take_digest(pending.id, self.owner, self.clock(), lease):
                if self.store.join_line(pending.id, incident_of(event).key, event.event_id):
                    resend.setdefault(pending.id, []).append(event.event_id)
                else:
                    rest.append(event)
            else:
                outcomes[event.event_id] = Deferred(
                    "its problem's digest is being posted by another worker", self._wait()
                )
        return rest

    # -- sorting ------------------------------------------------------------------------------------------

    def _sort(self, destination: Destination, events: list[AlertEvent]) -> _Sorted:
        sorted_ = _Sorted()
        members: dict[str, Member | None] = {}
        for event in events:
            incident = incident_of(event).key
            if incident in sorted_.lines and event.notification_type == "PROBLEM":
                sorted_.lines[incident].append(event)
                continue
            found = self.store.open_conversation(destination.key, incident)
            if found is None:
                if event.notification_type == "PROBLEM" and self.store.event_action(event.event_id) is None:
                    sorted_.lines[incident] = [event]
                else:
                    sorted_.one_by_one.append(event)
                continue
            if event.notification_type in FOLLOW_UPS:
                if incident not in members:
                    members[incident] = self.store.member(found.id)
                member = members[incident]
                if member is not None:
                    sorted_.follow_ups.setdefault((member.digest_id, member.part), []).append((found.id, event))
                    continue
            sorted_.one_by_one.append(event)
        return sorted_

    # -- new problems -------------------------------------------------------------------------------------

    def _new_digest(self, destination: Destination, sorted_: _Sorted, outcomes: dict[str, object]) -> None:
        groups = list(sorted_.lines.values())
        lengths = [digest.line_length(self.chat.chat, group[0]) for group in groups]
        parts = digest.parts_for(lengths, self.settings.max_items, self.chat.chat)
        items = [
            DigestItem(
                position,
                part,
                incident_of(group[0]).key,
                group[0].model_dump_json(by_alias=True),
                tuple(e.event_id for e in group),
            )
            for position, (group, part) in enumerate(zip(groups, parts, strict=True))
        ]
        now = self.clock()
        digest_id, held = self.store.new_digest(
            destination.key, items, self.owner, now, self.conversations.settings.claim_lease
        )
        ids = [event_id for item in items for event_id in item.event_ids]
        for event_id in ids:
            if event_id not in held:  # in another digest meanwhile: that one accounts for it
                outcomes[event_id] = Deferred("it is in another digest", self._wait())
        log.info("digest.made", digest=digest_id, destination=destination.key, lines=len(items), parts=parts[-1] + 1)
        self._settle(outcomes, [i for i in ids if i in held], lambda: self._post(digest_id, destination))

    def _post(self, digest_id: int, destination: Destination, taken_over: bool = False) -> None:
        """Post every part of the digest not posted yet, each recorded with its lines' conversations. A
        digest taken over from a worker that died may have a part posted whose answer never came: the
        chat is asked for it (by its key) before it is posted again."""
        items = self.store.digest_items(digest_id)
        created = self.store.digest_created_at(digest_id)
        parts = max(item.part for item in items) + 1
        posted = self.store.digest_parts(digest_id)
        lease = self.conversations.settings.claim_lease
        try:
            for part in range(parts):
                if part in posted:
                    continue
                mine = [item for item in items if item.part == part]
                leads = [AlertEvent.model_validate_json(item.event_json) for item in mine]
                view = digest.PartView(
                    tuple(digest.Line(event, State.OPEN, None, None) for event in leads),
                    part,
                    parts,
                    self._buttons(digest_id, part, mine, [True] * len(mine)),
                )
                key = (
                    "alertqd"
                    + hashlib.sha256(f"{destination.key}:{digest_id}:{created}:{part}".encode()).hexdigest()[:32]
                )
                ref = self.chat.find_digest(destination, key, created) if taken_over else None
                if ref is not None:
                    log.warning("digest.part_found", digest=digest_id, part=part, ref=ref.id)
                else:
                    ref = self.chat.post_digest(destination, view, key)
                members = [_member(item, lead) for item, lead in zip(mine, leads, strict=True)]
                self.store.record_digest_part(
                    digest_id, part, ref.channel, ref.id, destination.key, members, self.owner, self.clock(), lease
                )
                log.info("digest.part_posted", digest=digest_id, part=part, of=parts, lines=len(mine), ref=ref.id)
        except DeliveryError:
            self.store.release_digest(digest_id, self.owner)
            raise
        self.store.digest_posted(digest_id, self.clock())

    # -- follow-ups ---------------------------------------------------------------------------------------

    def _follow_ups(
        self, digest_id: int, part: int, group: list[tuple[int, AlertEvent]], outcomes: dict[str, object]
    ) -> None:
        now = self.clock()
        lease = self.conversations.settings.claim_lease
        mine: list[tuple[int, AlertEvent]] = []
        copies: dict[tuple[int, str], list[AlertEvent]] = {}  # other contacts' copies ride with the first
        for conversation_id, event in group:
            key = (conversation_id, fingerprint(event))
            if key in copies:
                copies[key].append(event)
                continue
            claim = self.store.claim(
                conversation_id,
                key[1],
                event.event_id,
                created=event.created_at.timestamp(),
                window=self.conversations.window,
                now=now,
                lease=lease,
            )
            if claim is Claim.DONE:
                self.store.done(conversation_id, None, event.event_id, "folded", now)
                outcomes[event.event_id] = None
            elif claim is Claim.BUSY:
                outcomes[event.event_id] = Deferred("its follow-up is being rendered", self._wait())
            else:
                copies[key] = []
                mine.append((conversation_id, event))
        if not mine:
            return
        for conversation_id, event in mine:
            if event.notification_type == "RECOVERY":
                recovered_at = event.created_at.timestamp()
                self.store.recover(conversation_id, event.model_dump_json(by_alias=True), recovered_at, now)
            elif event.ack is not None:
                self.store.acknowledge(conversation_id, event.ack.author, event.ack.comment)
            else:
                self.store.acknowledge(conversation_id, "", "")
        ids = [e.event_id for cid, first in mine for e in (first, *copies[(cid, fingerprint(first))])]

        def show() -> None:
            try:
                view = self._show_part(digest_id, part)
                reply = digest.storm_reply(self.chat.chat, [e for _, e in mine], view)
                if reply is not None:
                    [(channel, ref)] = [self.store.digest_parts(digest_id)[part]]
                    self.chat.reply_text(PostRef(channel, ref), reply)
            except DeliveryError:
                for conversation_id, event in mine:
                    self.store.release(conversation_id, fingerprint(event), event.event_id)
                raise
            done_at = self.clock()
            for conversation_id, event in mine:
                self.store.done(conversation_id, fingerprint(event), event.event_id, "digest-edit", done_at)
                for copy in copies[(conversation_id, fingerprint(event))]:
                    self.store.done(conversation_id, None, copy.event_id, "folded", done_at)
            log.info("digest.follow_ups", digest=digest_id, part=part, events=len(mine))

        self._settle(outcomes, ids, show)

    def _show_part(self, digest_id: int, part: int) -> digest.PartView:
        """Edit the posted part to show its lines as the store has them now; the view shown."""
        channel, ref = self.store.digest_parts(digest_id)[part]
        view = digest.signed_part_view(self.store, digest_id, part, self.chat.digest_signing(), self.clock())
        self.chat.edit_digest(PostRef(channel, ref), view)
        return view

    def _buttons(
        self, digest_id: int, part: int, items: list[DigestItem], open_: list[bool]
    ) -> digest.AckButtons | None:
        """Two-way chats: the part's signed tokens, bound to its lines (schemas/ack_token.py)."""
        return digest.buttons(self.chat.digest_signing(), digest_id, part, items, open_, self.clock())

    # -- helpers ------------------------------------------------------------------------------------------

    @staticmethod
    def _settle(outcomes: dict[str, object], event_ids: list[str], work: Callable[[], None]) -> None:
        try:
            work()
        except DeliveryError as exc:
            for event_id in event_ids:
                outcomes[event_id] = exc
            return
        for event_id in event_ids:
            outcomes[event_id] = None

    def _wait(self) -> float:
        return float(self.conversations.settings.follow_up_delay)


def _member(item: DigestItem, lead: AlertEvent) -> NewMember:
    incident = incident_of(lead)
    return NewMember(
        incident=incident.key,
        problem_id=incident.problem_id,
        lead_event=item.event_ids[0],
        event_json=item.event_json,
        fingerprint=fingerprint(lead),
        started_at=lead.created_at.timestamp(),
        position=item.position,
        event_ids=item.event_ids,
        contacts=(),
    )
