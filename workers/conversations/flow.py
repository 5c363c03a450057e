"""One conversation per incident and destination: what each event does to it. Read `deliver` top-down.

Per event (one delivery of one contact's notification):

1. Already handled (a redelivery after a crash)? Skip it: the store knows every event id it rendered.
2. Find the conversation of its destination and incident. A PROBLEM with none (or with another problem
   id than the open one's) starts one and claims its root; the claim is the database's unique index,
   so two workers with two contacts' copies start one conversation. A PROBLEM older than the RECOVERY
   that closed the latest conversation belongs to that one (it was overtaken). An ACKNOWLEDGEMENT or
   RECOVERY with no conversation waits (`Deferred`, through the broker) up to
   `conversations.wait_for_root` after its creation for its PROBLEM's conversation, then becomes a root
   of its own: a lost store never loses a notification. Anything else with none is a root of its own.
3. The root must exist before anything else goes into the thread: while another worker is posting it
   (its claim, no reference yet) the event is `Deferred`; a claim whose lease ran out (its worker
   died) is taken over, and the root posted from the store.
4. The same notification (type, number, escalation step) for another contact is rendered once: it only
   adds the contact to the root's list (brought up to date with at most one edit; later ones show at
   the next edit). Otherwise the event claims its rendering and:
   - PROBLEM (a re-notification, an escalation step, whose contact is mentioned) → thread reply;
   - ACKNOWLEDGEMENT → the root edited (who, why, no button) + reply;
   - RECOVERY → the root edited (recovered colour, "recovered after 12 min") + reply; closed;
   - flapping, downtime, custom, anything else → reply.
5. A root that was deleted in the chat (`PostNotFound`) is posted anew, showing the current state.

Edits render the whole root from the store and count a version: an editor whose edit may have landed
after a newer state was written edits again, so the last edit to land always shows the latest state.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime

import structlog

from delivery.chat.outcomes import Deferred, PostNotEditable, PostNotFound
from delivery.outcomes import DeliveryError
from schemas.alert import AlertEvent
from schemas.channels import ConversationSettings
from schemas.incident import Incident, incident_of
from workers.conversations import digest, render
from workers.conversations.chats import ConversationChat, PostRef
from workers.conversations.destination import Destination
from workers.conversations.store import Claim, Conversation, ConversationStore, State

log = structlog.get_logger("alertq.conversations")

# Follow-ups that only make sense after a PROBLEM: without a conversation they wait for its root.
WAITS_FOR_ROOT = frozenset({"ACKNOWLEDGEMENT", "RECOVERY"})
EDIT_ROUNDS = 3
HOUSEKEEPING_EVERY = 3600.0
KEEP_FOR = 7 * 86400.0


def fingerprint(event: AlertEvent) -> str:
    """One notification of an incident, whichever contact it was sent to: type, number, escalation step."""
    number = "" if event.notification_number is None else str(event.notification_number)
    step = 0 if event.escalation is None else event.escalation.step
    return f"{event.notification_type}|{number}|{step}"


def contact_of(event: AlertEvent) -> str:
    return (event.contact.name or "") if event.contact is not None else ""


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


class Conversations:
    """The conversations of one chat channel in one worker process (thread-safe: the store is)."""

    def __init__(
        self,
        chat: ConversationChat,
        settings: ConversationSettings,
        window: float,
        store: ConversationStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chat = chat
        self.settings = settings
        # Copies of one notification (one per contact) are created within seconds of each other; the
        # same type, number and step created further apart is another round (a new problem's PROBLEM 1).
        self.window = window
        self.store = store or ConversationStore(settings.store)
        self.clock = clock
        self._housekept_at = 0.0

    def target(self, event: AlertEvent) -> str:
        """The worker's lane and rate-limit key: the destination."""
        return self.chat.destination(event).key

    def close(self) -> None:
        self.chat.close()
        self.store.close()

    # -- the flow -----------------------------------------------------------------------------------------

    def deliver(self, event: AlertEvent) -> None:
        now = self.clock()
        self._housekeeping(now)
        done = self.store.event_action(event.event_id)
        if done is not None:
            log.info("conversation.redelivered", event_id=event.event_id, done=done)
            return
        destination = self.chat.destination(event)
        incident = incident_of(event)
        bound = log.bind(event_id=event.event_id, destination=destination.key, incident=incident.key)
        conversation = self._find(destination, incident, event, now, bound)
        if conversation is None:
            return  # the event was posted as the root of a conversation it started
        conversation, posted_now = self._ensure_root(conversation, destination, event, bound)
        self._apply(conversation, destination, event, posted_now, bound)

    def _find(
        self, destination: Destination, incident: Incident, event: AlertEvent, now: float, bound: structlog.BoundLogger
    ) -> Conversation | None:
        """The conversation `event` goes into; None when it started one and posted its root itself."""
        kind = event.notification_type
        created = _epoch(event.created_at)
        found = self.store.open_conversation(destination.key, incident.key)
        if kind == "PROBLEM" and found is not None and self._other_problem(found, incident, event, created):
            bound.info("conversation.superseded", conversation=found.id, problem_id=incident.problem_id)
            self.store.supersede(found.id, now)
            found = None
        if found is not None:
            return found
        latest = self.store.latest_closed(destination.key, incident.key)
        if latest is not None and self._belongs_to_closed(latest, incident, event, created):
            return latest
        if kind in WAITS_FOR_ROOT and now - created < self.settings.wait_for_root:
            raise Deferred(f"no conversation for {incident.key} yet: waiting for its root", self._wait())
        # Start one: a PROBLEM's stays open; a RECOVERY's is closed at once (other contacts' copies fold
        # into it); an ACKNOWLEDGEMENT's stays open, acknowledged; anything else's is closed.
        state = {"PROBLEM": State.OPEN, "ACKNOWLEDGEMENT": State.ACKNOWLEDGED}.get(kind, State.RECOVERED)
        closes = state is State.RECOVERED
        conversation, mine = self.store.start(
            destination.key,
            incident.key,
            incident.problem_id,
            event_id=event.event_id,
            event_json=event.model_dump_json(by_alias=True),
            fingerprint=fingerprint(event),
            started_at=created,
            state=state,
            now=now,
            lease=self.settings.claim_lease,
            closed_by_at=created if closes else None,
        )
        if not mine:
            return conversation
        if kind == "ACKNOWLEDGEMENT" and event.ack is not None:
            self.store.acknowledge(conversation.id, event.ack.author, event.ack.comment)
        self._add_contact(conversation, event, now, root=True)
        bound.info("conversation.started", conversation=conversation.id, by=kind)
        conversation = self.store.get(conversation.id)
        self._post_root(conversation, destination, event, bound)
        self.store.done(conversation.id, conversation.root_fingerprint, event.event_id, "root", self.clock())
        return None

    def _other_problem(self, found: Conversation, incident: Incident, event: AlertEvent, created: float) -> bool:
        """Whether a PROBLEM belongs to another problem than the open conversation's: another problem id,
        or (without ids) the root's own notification number again, created too long after it to be a copy
        (the object recovered without a RECOVERY notification, and numbering started again). Without
        numbers (the Slack module's command line passes none) a later PROBLEM is a re-notification."""
        if Incident(found.incident, found.problem_id).is_other_problem(incident.problem_id):
            return True
        if event.notification_number is None:
            return False
        return fingerprint(event) == found.root_fingerprint and created - found.started_at > self.window

    def _belongs_to_closed(self, latest: Conversation, incident: Incident, event: AlertEvent, created: float) -> bool:
        """Whether `event` goes into the latest, closed conversation: a PROBLEM the RECOVERY that closed it
        overtook (created before it), or another contact's copy of a notification it has (a RECOVERY's,
        an acknowledgement's) created no later than `window` after it closed."""
        if Incident(latest.incident, latest.problem_id).is_other_problem(incident.problem_id):
            return False
        closed_by = latest.closed_by_at if latest.closed_by_at is not None else latest.closed_at
        if event.notification_type == "PROBLEM":
            return latest.state is State.RECOVERED and latest.closed_by_at is not None and created < latest.closed_by_at
        return self.store.claimed(latest.id, fingerprint(event)) is not None and (
            closed_by is None or created <= closed_by + self.window
        )

    def _ensure_root(
        self, conversation: Conversation, destination: Destination, event: AlertEvent, bound: structlog.BoundLogger
    ) -> tuple[Conversation, bool]:
        """The conversation with its root posted; True when this event posted it just now."""
        if conversation.root_ref is not None:
            return conversation, False
        if not self.store.take_root(conversation.id, event.event_id, self.clock(), self.settings.claim_lease):
            self._add_contact(conversation, event, self.clock())  # so that the root, once posted, names it
            raise Deferred(f"the root of {conversation.incident} is being posted", self._wait())
        if conversation.root_claimed_by not in (None, event.event_id):
            bound.warning("conversation.root_taken_over", conversation=conversation.id)
        self._post_root(self.store.get(conversation.id), destination, event, bound)
        return self.store.get(conversation.id), True

    def _post_root(
        self, conversation: Conversation, destination: Destination, event: AlertEvent, bound: structlog.BoundLogger
    ) -> PostRef:
        """Post the root of `conversation` (which `event` has claimed) as the store says it is now."""
        view = self._view(conversation)
        # The same event posting the same root again (its first answer lost to a crash) sends the same
        # key: Mattermost then answers with the post it made (within 30 s) instead of a second root.
        key = hashlib.sha256(f"{conversation.id}:{conversation.root_generation}:{event.event_id}".encode())
        try:
            ref = self.chat.post_root(destination, view, "alertq" + key.hexdigest()[:32])
        except DeliveryError:
            self.store.release_root(conversation.id, event.event_id)
            raise
        if not self.store.record_root(conversation.id, event.event_id, ref.channel, ref.id, self.clock()):
            bound.warning("conversation.root_claim_lost", conversation=conversation.id, ref=ref.id)
        self.store.shown(conversation.id, len(view.contacts))
        bound.info("conversation.root_posted", conversation=conversation.id, ref=ref.id)
        missing = set(self.store.contacts(conversation.id)) - set(view.contacts)
        if missing:
            self._contacts_edit(conversation.id, bound)
        return ref

    def _apply(
        self,
        conversation: Conversation,
        destination: Destination,
        event: AlertEvent,
        posted_now: bool,
        bound: structlog.BoundLogger,
    ) -> None:
        now = self.clock()
        print_ = fingerprint(event)
        if (
            print_ == conversation.root_fingerprint
            and _epoch(event.created_at) - conversation.started_at <= self.window
        ):
            # The root shows this notification: another contact's copy, or the root's own event again.
            self._fold(conversation, event, posted_now, bound)
            return
        claim = self.store.claim(
            conversation.id,
            print_,
            event.event_id,
            created=_epoch(event.created_at),
            window=self.window,
            now=now,
            lease=self.settings.claim_lease,
        )
        if claim is Claim.DONE:
            self._fold(conversation, event, posted_now, bound)
            return
        if claim is Claim.BUSY:
            self._add_contact(conversation, event, now)
            raise Deferred(f"{event.notification_type} of {conversation.incident} is being rendered", self._wait())
        try:
            action = self._render(conversation, destination, event, bound)
        except DeliveryError:
            self.store.release(conversation.id, print_, event.event_id)
            raise
        self.store.done(conversation.id, print_, event.event_id, action, self.clock())

    def _render(
        self, conversation: Conversation, destination: Destination, event: AlertEvent, bound: structlog.BoundLogger
    ) -> str:
        """Do what `event` means to the conversation; returns what was done."""
        kind = event.notification_type
        now = self.clock()
        after = None
        if kind == "ACKNOWLEDGEMENT":
            ack = event.ack
            self.store.acknowledge(conversation.id, ack.author if ack else "", ack.comment if ack else "")
        elif kind == "RECOVERY":
            self.store.recover(conversation.id, event.model_dump_json(by_alias=True), _epoch(event.created_at), now)
            root_event = AlertEvent.model_validate_json(conversation.root_event)
            if root_event.notification_type == "PROBLEM":
                after = render.duration(_epoch(event.created_at) - conversation.started_at)
        else:
            self._add_contact(conversation, event, now)
        edited = kind in ("ACKNOWLEDGEMENT", "RECOVERY")
        if edited:
            self._edit_root(conversation.id, destination, event, bound)
        self._reply(conversation.id, destination, event, after, bound)
        bound.info("conversation.rendered", conversation=conversation.id, kind=kind, edited=edited)
        return "edit+reply" if edited else "reply"

    def _fold(
        self, conversation: Conversation, event: AlertEvent, posted_now: bool, bound: structlog.BoundLogger
    ) -> None:
        now = self.clock()
        self._add_contact(conversation, event, now)
        # A contact the root does not list yet (this copy's, or one noted while the root was being
        # posted, after its poster looked): the one contacts edit, if it was not made already.
        if (
            not posted_now
            and len(self.store.contacts(conversation.id)) > self.store.get(conversation.id).shown_contacts
        ):
            self._contacts_edit(conversation.id, bound)
        self.store.done(conversation.id, None, event.event_id, "root" if posted_now else "folded", now)
        bound.info("conversation.folded" if not posted_now else "conversation.root_done", conversation=conversation.id)

    # -- chat operations with a root that may be gone -------------------------------------------------------

    def _edit_root(
        self, conversation_id: int, destination: Destination, event: AlertEvent, bound: structlog.BoundLogger
    ) -> None:
        for _ in range(EDIT_ROUNDS):
            conversation = self.store.get(conversation_id)
            root = self._root(conversation, destination, event, bound)
            if root is None:
                return  # posted anew just now, showing the latest state
            member = self.store.member(conversation_id)
            view = self._view(conversation)
            try:
                if member is not None:  # its root is a line of a digest: the part is edited, buttons too
                    signing = self.chat.digest_signing()
                    shown = digest.signed_part_view(self.store, member.digest_id, member.part, signing, self.clock())
                    self.chat.edit_digest(root, shown)
                else:
                    self.chat.edit_root(root, view)
            except PostNotFound:
                bound.warning("conversation.root_gone", conversation=conversation_id, ref=root.id)
                self._repost(conversation, root, destination, event, bound)
                return
            except PostNotEditable as exc:
                # The chat's edit time limit, an archived channel: the thread reply still tells it.
                bound.warning("conversation.root_not_editable", conversation=conversation_id, error=exc.reason)
                return
            self.store.shown(conversation_id, len(view.contacts))
            if self.store.get(conversation_id).version <= conversation.version:
                return
            # A newer state was written while this edit was on its way: show it.

    def _reply(
        self,
        conversation_id: int,
        destination: Destination,
        event: AlertEvent,
        after: str | None,
        bound: structlog.BoundLogger,
    ) -> None:
        for _ in range(2):
            conversation = self.store.get(conversation_id)
            root = self._root(conversation, destination, event, bound)
            if root is None:
                conversation = self.store.get(conversation_id)
                assert conversation.root_ref is not None and conversation.root_channel is not None
                root = PostRef(conversation.root_channel, conversation.root_ref)
            try:
                self.chat.reply(root, event, after)
                return
            except PostNotFound:
                bound.warning("conversation.root_gone", conversation=conversation_id, ref=root.id)
                self._repost(conversation, root, destination, event, bound)
        raise Deferred("the conversation's root keeps disappearing", self._wait())

    def _root(
        self, conversation: Conversation, destination: Destination, event: AlertEvent, bound: structlog.BoundLogger
    ) -> PostRef | None:
        """The root's reference; when there is none, post it (None: posted just now)."""
        if conversation.root_ref is not None and conversation.root_channel is not None:
            return PostRef(conversation.root_channel, conversation.root_ref)
        self._ensure_root(conversation, destination, event, bound)
        return None

    def _repost(
        self,
        conversation: Conversation,
        gone: PostRef,
        destination: Destination,
        event: AlertEvent,
        bound: structlog.BoundLogger,
    ) -> None:
        """The root was deleted in the chat: post a new one (a lost root never loses a notification)."""
        if not self.store.forget_root(
            conversation.id, gone.id, event.event_id, self.clock(), self.settings.claim_lease
        ):
            fresh = self.store.get(conversation.id)
            if fresh.root_ref is None:
                raise Deferred(f"the root of {conversation.incident} is being posted anew", self._wait())
            return  # another event posted the new root already
        self.store.leave_digest(conversation.id)
        self._post_root(self.store.get(conversation.id), destination, event, bound)

    def _contacts_edit(self, conversation_id: int, bound: structlog.BoundLogger) -> None:
        """At most once per conversation: the root's list of notified contacts brought up to date."""
        if self.store.member(conversation_id) is not None:
            return  # a digest line lists no contacts
        if self.store.take_contacts_edit(conversation_id) is None:
            return
        conversation = self.store.get(conversation_id)
        if conversation.root_ref is None or conversation.root_channel is None:
            return
        view = self._view(conversation)
        try:
            self.chat.edit_root(PostRef(conversation.root_channel, conversation.root_ref), view)
        except (PostNotFound, PostNotEditable):
            return  # the next event that needs the root posts it anew, or says it in the thread
        self.store.shown(conversation_id, len(view.contacts))
        bound.info("conversation.contacts_shown", conversation=conversation_id)

    # -- helpers ------------------------------------------------------------------------------------------

    def _view(self, conversation: Conversation) -> render.RootView:
        recovery = conversation.recovery_event
        root_event = AlertEvent.model_validate_json(conversation.root_event)
        return render.RootView(
            event=root_event,
            contacts=tuple(self.store.contacts(conversation.id)),
            ack_author=conversation.ack_author,
            ack_comment=conversation.ack_comment,
            recovery=AlertEvent.model_validate_json(recovery)
            if recovery and root_event.notification_type != "RECOVERY"
            else None,
        )

    def _add_contact(self, conversation: Conversation, event: AlertEvent, now: float, root: bool = False) -> bool:
        """The root lists the contacts the core notified of its problem; an escalation step's contact is
        mentioned in the thread instead, unless the step starts the conversation (`root`: in the
        contact's own channel)."""
        contact = contact_of(event)
        step = 0 if event.escalation is None else event.escalation.step
        if not contact or event.notification_type != "PROBLEM" or (step > 0 and not root):
            return False
        return self.store.add_contact(conversation.id, contact, now)

    def _wait(self) -> float:
        return float(self.settings.follow_up_delay)

    def _housekeeping(self, now: float) -> None:
        if now - self._housekept_at < HOUSEKEEPING_EVERY:
            return
        self._housekept_at = now
        dropped = self.store.forget_old(now - KEEP_FOR)
        if dropped:
            log.info("conversation.forgot_old", conversations=dropped)
