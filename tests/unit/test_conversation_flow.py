"""The conversation rules on their own: a real store (SQLite in tmp_path), a chat that records what it
is asked, events as the core sends them. What the rules decide is what a reader would see: which
notifications become roots, replies, edits, or nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from delivery.chat.outcomes import Deferred, PostNotFound
from delivery.outcomes import Retryable
from schemas.alert import AlertEvent
from schemas.channels import ConversationSettings
from workers.conversations import digest
from workers.conversations.chats import ConversationChat, PostRef
from workers.conversations.destination import Destination
from workers.conversations.flow import Conversations
from workers.conversations.render import RootView

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@dataclass
class RecordingChat(ConversationChat):
    chat = "mattermost"
    calls: list[tuple[str, str]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    posts: int = 0
    shown: dict[str, Any] = field(default_factory=dict)

    def destination(self, event: AlertEvent) -> Destination:
        channel = event.contact.address if event.contact is not None and event.contact.address else "ops/alerts"
        return Destination("mattermost", "abc", channel)

    def post_root(self, destination: Destination, view: RootView, key: str) -> PostRef:
        self.posts += 1
        ref = f"post{self.posts}"
        self.calls.append(("root", f"{ref} {view.event.notification_type}"))
        return PostRef(destination.channel, ref)

    def edit_root(self, root: PostRef, view: RootView) -> None:
        if root.id in self.gone:
            raise PostNotFound("gone", ref=root.id)
        state = "recovered" if view.recovery else "acknowledged" if view.ack_author else "open"
        self.calls.append(("edit", f"{root.id} {state} {','.join(view.contacts)}"))

    def reply(self, root: PostRef, event: AlertEvent, after: str | None = None) -> PostRef:
        if root.id in self.gone:
            raise PostNotFound("gone", ref=root.id)
        self.calls.append(("reply", f"{root.id} {event.notification_type}"))
        return PostRef(root.channel, f"r{len(self.calls)}")

    def close(self) -> None:
        pass

    # digests (test_storms.py)
    capacity: int = 7
    fail_digest_after: int | None = None  # digest posts that succeed before the chat refuses one

    def post_capacity(self, destination: Destination, within: float) -> int:
        return self.capacity

    def find_digest(self, destination: Destination, key: str, since: float) -> PostRef | None:
        return None

    def post_digest(self, destination: Destination, view: digest.PartView, key: str) -> PostRef:
        if self.fail_digest_after is not None:
            if self.fail_digest_after <= 0:
                raise Retryable("chat down")
            self.fail_digest_after -= 1
        self.posts += 1
        ref = f"post{self.posts}"
        self.calls.append(("digest", f"{ref} {digest.headline(view)}"))
        self.shown[ref] = view
        return PostRef(destination.channel, ref)

    def edit_digest(self, part: PostRef, view: digest.PartView) -> None:
        self.calls.append(("edit-digest", f"{part.id} {digest.headline(view)}"))
        self.shown[part.id] = view

    def reply_text(self, root: PostRef, text: str) -> PostRef:
        self.calls.append(("reply", f"{root.id} {text}"))
        return PostRef(root.channel, f"r{len(self.calls)}")


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def chat() -> RecordingChat:
    return RecordingChat()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def flow(chat: RecordingChat, clock: Clock, tmp_path: Path) -> Conversations:
    settings = ConversationSettings(store=f"sqlite:///{tmp_path}/c.db", wait_for_root=30)
    return Conversations(chat, settings, window=120, clock=clock)


def event(
    kind: str, contact: str = "alice", number: int | None = 1, at: float = 0, address: str | None = None, **more: Any
) -> AlertEvent:
    data: dict[str, Any] = {
        "schema": "alertq.alert/1",
        "event_id": str(uuid.uuid4()),
        "created_at": (T0 + timedelta(seconds=at)).isoformat(),
        "channel": "mattermost",
        "kind": "service",
        "notification_type": kind,
        "host": {"id": "h1", "name": "h1", "display_name": "web01"},
        "service": {"id": "s1", "name": "s1", "display_name": "Disk"},
        "state": 0 if kind == "RECOVERY" else 2,
        "output": "x",
        "notification_number": number,
        "contact": {"name": contact, "address": address},
        "source": {"producer_host": "p", "core": "naemon"},
        **more,
    }
    if kind == "ACKNOWLEDGEMENT":
        data["ack"] = {"author": "jdoe", "comment": "on it"}
    return AlertEvent.model_validate(data)


def test_copies_for_several_contacts_make_one_root_and_one_contacts_edit(
    flow: Conversations, chat: RecordingChat
) -> None:
    flow.deliver(event("PROBLEM", "alice"))
    flow.deliver(event("PROBLEM", "bob"))
    flow.deliver(event("PROBLEM", "carol"))
    assert chat.calls == [("root", "post1 PROBLEM"), ("edit", "post1 open alice,bob")]


def test_ack_and_recovery_edit_the_root_and_reply_once_whatever_the_contacts(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    flow.deliver(event("PROBLEM", "alice"))
    for contact in ("alice", "bob"):
        flow.deliver(event("ACKNOWLEDGEMENT", contact, at=60))
    clock.now += 600
    for contact in ("alice", "bob"):
        flow.deliver(event("RECOVERY", contact, number=2, at=600))
    assert chat.calls == [
        ("root", "post1 PROBLEM"),
        ("edit", "post1 acknowledged alice"),
        ("reply", "post1 ACKNOWLEDGEMENT"),
        ("edit", "post1 recovered alice"),  # the root lists who was told of the problem
        ("reply", "post1 RECOVERY"),
    ]


def test_a_redelivered_event_does_nothing_again(flow: Conversations, chat: RecordingChat) -> None:
    problem = event("PROBLEM")
    flow.deliver(problem)
    flow.deliver(problem)
    assert chat.calls == [("root", "post1 PROBLEM")]


def test_re_notifications_without_numbers_are_replies(flow: Conversations, chat: RecordingChat, clock: Clock) -> None:
    flow.deliver(event("PROBLEM", number=None))
    clock.now += 600
    flow.deliver(event("PROBLEM", number=None, at=600))
    assert chat.calls == [("root", "post1 PROBLEM"), ("reply", "post1 PROBLEM")]


def test_a_new_problem_numbered_1_again_long_after_starts_a_new_root(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    flow.deliver(event("PROBLEM"))
    clock.now += 3600
    flow.deliver(event("PROBLEM", at=3600))
    assert chat.calls == [("root", "post1 PROBLEM"), ("root", "post2 PROBLEM")]


def test_another_problem_id_starts_a_new_root_and_a_recovery_without_one_closes_it(
    flow: Conversations, chat: RecordingChat
) -> None:
    flow.deliver(event("PROBLEM", problem_id="41"))
    flow.deliver(event("PROBLEM", number=2, problem_id="42", at=10))
    flow.deliver(event("RECOVERY", number=3, at=20))
    assert chat.calls == [
        ("root", "post1 PROBLEM"),
        ("root", "post2 PROBLEM"),
        ("edit", "post2 recovered alice"),
        ("reply", "post2 RECOVERY"),
    ]


def test_a_follow_up_with_no_conversation_waits_then_becomes_its_own_root(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    recovery = event("RECOVERY", number=2)
    with pytest.raises(Deferred):
        flow.deliver(recovery)
    clock.now += 31
    flow.deliver(recovery)
    # The PROBLEM it overtook comes after all: it goes into that conversation's thread.
    flow.deliver(event("PROBLEM", at=-5))
    assert chat.calls == [("root", "post1 RECOVERY"), ("reply", "post1 PROBLEM")]


def test_a_deleted_root_is_posted_anew_and_the_event_replies_under_it(flow: Conversations, chat: RecordingChat) -> None:
    flow.deliver(event("PROBLEM"))
    chat.gone.add("post1")
    flow.deliver(event("ACKNOWLEDGEMENT", at=10))
    assert chat.calls == [("root", "post1 PROBLEM"), ("root", "post2 PROBLEM"), ("reply", "post2 ACKNOWLEDGEMENT")]


def test_an_escalation_step_to_a_contacts_own_channel_starts_a_conversation_there(
    flow: Conversations, chat: RecordingChat
) -> None:
    flow.deliver(event("PROBLEM"))
    step = {"policy": "p", "step": 1}
    flow.deliver(event("PROBLEM", "carol", escalation=step, at=5))
    flow.deliver(event("PROBLEM", "dave", address="@dave", escalation=step, at=5))
    assert chat.calls == [("root", "post1 PROBLEM"), ("reply", "post1 PROBLEM"), ("root", "post2 PROBLEM")]


def test_a_contact_noted_while_the_root_was_being_posted_is_shown_when_its_copy_comes_back(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    flow.deliver(event("PROBLEM", "alice"))
    conversation = flow.store.open_conversation("mattermost:abc:ops/alerts", "h1/s1")
    assert conversation is not None
    # bob's copy found the root being posted: it noted bob and waited, after alice's worker had looked.
    flow.store.add_contact(conversation.id, "bob", clock.now + 1)
    flow.deliver(event("PROBLEM", "bob"))
    assert chat.calls == [("root", "post1 PROBLEM"), ("edit", "post1 open alice,bob")]


def test_an_escalation_steps_contact_is_mentioned_in_the_thread_not_added_to_the_roots_list(
    flow: Conversations, chat: RecordingChat
) -> None:
    flow.deliver(event("PROBLEM", "alice"))
    flow.deliver(event("PROBLEM", "carol", escalation={"policy": "p", "step": 1}, at=5))
    flow.deliver(event("ACKNOWLEDGEMENT", "alice", at=10))
    flow.deliver(event("ACKNOWLEDGEMENT", "bob", at=10))  # another contact's copy: no edit for carol
    assert chat.calls == [
        ("root", "post1 PROBLEM"),
        ("reply", "post1 PROBLEM"),
        ("edit", "post1 acknowledged alice"),
        ("reply", "post1 ACKNOWLEDGEMENT"),
    ]
