"""Folding a storm into digests (workers/conversations/storms.py) on its own: a real store (SQLite in
tmp_path), the recording chat of the conversation rules' tests, events as the core sends them. What is
checked is what a reader sees: which posts, which lines, every problem once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from delivery.outcomes import Retryable
from schemas.alert import AlertEvent
from schemas.channels import ConversationSettings, FoldSettings
from tests.unit.test_conversation_flow import Clock, RecordingChat, event
from workers.channels.base import ONE_BY_ONE
from workers.conversations.flow import Conversations
from workers.conversations.storms import Storms
from workers.folds import NO_HOLD, Hold


def problem(host: int, contact: str = "alice", state: int = 2, at: float = 0) -> AlertEvent:
    return event(
        "PROBLEM",
        contact,
        at=at,
        host={"id": f"h{host}", "name": f"h{host}", "display_name": f"web{host:02d}"},
        service={"id": f"s{host}", "name": f"s{host}", "display_name": "Disk /"},
        state=state,
        output=f"DISK {'CRITICAL' if state == 2 else 'WARNING'} - free {host}%\nsecond line",
    )


def follow_up(first: AlertEvent, kind: str, contact: str = "alice", at: float = 300) -> AlertEvent:
    return event(kind, contact, number=2, at=at).model_copy(update={"host": first.host, "service": first.service})


@pytest.fixture
def flow(chat: RecordingChat, clock: Clock, tmp_path: Path) -> Conversations:
    settings = ConversationSettings(store=f"sqlite:///{tmp_path}/c.db", wait_for_root=30, claim_lease=30)
    return Conversations(chat, settings, window=120, clock=clock)


@pytest.fixture
def chat() -> RecordingChat:
    return RecordingChat()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def storms(flow: Conversations, max_items: int = 100) -> Storms:
    return Storms(flow, FoldSettings(max_items=max_items), clock=flow.clock)


def test_what_the_budget_lets_out_in_time_goes_one_by_one(flow: Conversations, chat: RecordingChat) -> None:
    events = [problem(n) for n in range(5)]
    assert storms(flow).fold(events) is None  # the worker sends each alone
    assert chat.calls == []


def test_a_storm_trickling_in_at_the_chats_own_rate_folds_after_max_alone_lone_posts(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    folding = Storms(flow, FoldSettings(max_alone=3, hold=20), clock=flow.clock)
    chat.capacity = 2  # the chat's burst is spent: it lets out about one post a second
    for n in range(3):  # one a second: the budget lets each out alone
        assert folding.fold([problem(n)]) is None
        clock.now += 1
    fourth = [problem(3)]
    assert folding.fold(fourth) == {fourth[0].event_id: None}  # the 4th within 20 s: a digest of one
    assert [call[0] for call in chat.calls] == ["digest"]
    clock.now += 60  # quiet again: alone
    assert folding.fold([problem(9)]) is None


def test_a_chat_that_takes_far_more_than_comes_posts_each_alone(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    folding = Storms(flow, FoldSettings(max_alone=3, hold=20), clock=flow.clock)
    chat.capacity = 200  # e.g. a webhook allowed 100/s: a problem every 10 ms is no flood for it
    for n in range(10):
        assert folding.fold([problem(n)]) is None
        clock.now += 0.01
    assert chat.calls == []


def test_a_storm_is_one_digest_listing_each_problem_once_whatever_the_contacts(
    flow: Conversations, chat: RecordingChat
) -> None:
    events = [problem(n, contact, state=2 if n < 30 else 1) for n in range(37) for contact in ("alice", "bob")]
    outcomes = storms(flow).fold(events)
    assert outcomes == {e.event_id: None for e in events}
    assert chat.calls == [("digest", "post1 37 problems on 37 hosts: 30 CRITICAL, 7 WARNING")]
    assert len(chat.shown["post1"].lines) == 37
    # A redelivered copy is done, not posted again; the incident's conversation has the digest as root.
    assert storms(flow).fold(events[:10]) == {e.event_id: None for e in events[:10]}
    flow.deliver(events[0])
    assert len(chat.calls) == 1


def test_a_big_storm_is_split_into_as_few_parts_as_the_limit_needs(flow: Conversations, chat: RecordingChat) -> None:
    events = [problem(n) for n in range(250)]
    storms(flow, max_items=100).fold(events)
    assert [call[0] for call in chat.calls] == ["digest"] * 3
    assert sorted(len(view.lines) for view in chat.shown.values()) == [82, 84, 84]
    shown = [line.event.host.name for view in chat.shown.values() for line in view.lines]
    assert sorted(shown) == sorted(e.host.name for e in events)  # every problem once


def test_a_digest_interrupted_mid_way_is_completed_not_posted_twice(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    events = [problem(n) for n in range(250)]
    chat.fail_digest_after = 1  # part 1 posted, then the chat refuses
    first = storms(flow, max_items=100).fold(events)
    assert first is not None and all(isinstance(first[e.event_id], Retryable) for e in events)
    chat.fail_digest_after = None
    clock.now += 60  # the first worker's claim ran out (it died)
    again = Storms(flow, FoldSettings(max_items=100), clock=flow.clock)  # another worker process
    assert again.fold(events) == {e.event_id: None for e in events}
    shown = [line.event.host.name for view in chat.shown.values() for line in view.lines]
    assert len(chat.calls) == 3 and sorted(shown) == sorted(e.host.name for e in events)


def test_a_live_claim_of_another_worker_makes_its_events_wait(flow: Conversations, chat: RecordingChat) -> None:
    events = [problem(n) for n in range(20)]
    chat.fail_digest_after = 0
    storms(flow).fold(events)
    # The failure released the claim: another worker takes it over at once.
    chat.fail_digest_after = None
    assert storms(flow).fold(events) == {e.event_id: None for e in events}


def test_a_storm_of_recoveries_edits_the_digest_per_batch_and_replies_once_when_all_closed(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    problems = [problem(n) for n in range(20)]
    storms(flow).fold(problems)
    clock.now += 300
    recoveries = [follow_up(p, "RECOVERY", contact) for p in problems[:12] for contact in ("alice", "bob")]
    outcomes = storms(flow).fold(recoveries)
    assert outcomes == {e.event_id: None for e in recoveries}
    # The edit shows them; a reply per batch would flood the thread as the posts would have flooded the channel.
    assert chat.calls[1:] == [("edit-digest", "post1 20 problems on 20 hosts: 8 CRITICAL, 12 recovered")]
    clock.now += 5
    rest = [follow_up(p, "RECOVERY", contact) for p in problems[12:] for contact in ("alice", "bob")]
    assert storms(flow).fold(rest) == {e.event_id: None for e in rest}
    assert chat.calls[2:] == [
        ("edit-digest", "post1 20 problems on 20 hosts: 20 recovered"),
        ("reply", "post1 All closed: 20 problems on 20 hosts: 20 recovered"),
    ]


def test_acknowledgements_of_folded_problems_in_a_storm_are_listed_in_the_digest_thread(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    problems = [problem(n) for n in range(20)]
    storms(flow).fold(problems)
    clock.now += 300
    acks = [follow_up(p, "ACKNOWLEDGEMENT", contact) for p in problems[:12] for contact in ("alice", "bob")]
    assert storms(flow).fold(acks) == {e.event_id: None for e in acks}
    assert chat.calls[1][0] == "edit-digest"
    assert chat.calls[2] == ("reply", "post1 12 acknowledged: " + ", ".join(f"web{n:02d} / Disk /" for n in range(12)))


def test_one_recovery_of_a_folded_problem_edits_its_digest_line_through_the_conversation(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    problems = [problem(n) for n in range(20)]
    storms(flow).fold(problems)
    clock.now += 300
    flow.deliver(follow_up(problems[3], "ACKNOWLEDGEMENT", at=200))
    assert chat.calls[1][0] == "edit-digest"
    assert chat.calls[1][1] == "post1 20 problems on 20 hosts: 19 CRITICAL, 1 acknowledged"
    assert chat.calls[2] == ("reply", "post1 ACKNOWLEDGEMENT")


def test_follow_ups_of_incidents_with_their_own_root_go_one_by_one(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    alone = problem(99)
    flow.deliver(alone)
    problems = [problem(n) for n in range(20)]
    outcomes = storms(flow).fold([*problems, follow_up(alone, "RECOVERY")])
    assert outcomes is not None
    assert [v for v in outcomes.values() if v is not None] == [ONE_BY_ONE]


def test_another_contacts_copy_joins_the_line_of_a_digest_still_being_posted(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    first = [problem(n, "alice") for n in range(20)]
    chat.fail_digest_after = 0
    assert storms(flow).fold(first) is not None  # the digest is made, its post refused: released
    chat.fail_digest_after = None
    copies = [problem(n, "bob") for n in range(20)]
    assert storms(flow).fold(copies) == {e.event_id: None for e in copies}  # they post that digest
    assert storms(flow).fold(first) == {e.event_id: None for e in first}  # redelivered: done
    shown = [line.event.host.name for view in chat.shown.values() for line in view.lines]
    assert sorted(shown) == sorted(e.host.name for e in first)  # each problem once


def test_a_storm_that_trickles_in_stays_folded_until_it_has_been_quiet_for_the_hold(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    folding = Storms(flow, FoldSettings(hold=3, window=2), clock=flow.clock)
    folding.fold([problem(n) for n in range(20)])  # a storm: one digest
    clock.now += 3  # the lane held 3 s; what came meanwhile is few, but the storm goes on
    trickle = [problem(n) for n in range(20, 23)]
    assert folding.fold(trickle) == {e.event_id: None for e in trickle}
    assert [call[0] for call in chat.calls] == ["digest", "digest"]
    clock.now += 6  # quiet for longer than hold + window: one by one again, at once
    late = [problem(n) for n in range(30, 33)]
    assert folding.fold(late) is None


def test_in_a_storm_even_one_new_problem_or_one_recovery_takes_the_digest_path(
    flow: Conversations, chat: RecordingChat, clock: Clock
) -> None:
    folding = Storms(flow, FoldSettings(hold=3, window=2), clock=flow.clock)
    first = [problem(n) for n in range(20)]
    folding.fold(first)
    clock.now += 3
    one = [problem(40, "alice"), problem(40, "bob")]  # one problem, two contacts
    assert folding.fold(one) == {e.event_id: None for e in one}
    clock.now += 3
    recovery = [follow_up(first[0], "RECOVERY")]
    assert folding.fold(recovery) == {recovery[0].event_id: None}
    # A digest of one line (no lone root to edit and reply to later), then the line marked: no reply yet.
    assert [call[0] for call in chat.calls] == ["digest", "digest", "edit-digest"]


def lane_batches(holds: list[Hold], arrivals: list[tuple[float, int]], settle: float) -> list[tuple[float, list[int]]]:
    """Run a fold lane whose runner answers `holds` in turn (then no hold); submit each item after its
    delay; return each batch with the seconds from the first submit until it ran."""
    import threading

    from workers.folds import FoldLanes

    batches: list[tuple[float, list[int]]] = []
    started = time.monotonic()
    lock = threading.Lock()

    def run(target: str, batch: list[int]) -> Hold:
        with lock:
            batches.append((time.monotonic() - started, batch))
            return holds[len(batches) - 1] if len(batches) <= len(holds) else NO_HOLD

    lanes: FoldLanes[int] = FoldLanes(run)
    for delay, item in arrivals:
        time.sleep(delay)
        lanes.submit("chat", item)
    time.sleep(settle)
    lanes.shutdown()
    return batches


def test_a_fold_lane_holds_after_a_folded_batch_and_takes_what_came_meanwhile_as_one() -> None:
    batches = lane_batches([Hold(0.2)], [(0, 1), (0.05, 2), *((0.01, n) for n in range(3, 7))], settle=0.3)
    assert [batch for _, batch in batches] == [[1], [2, 3, 4, 5, 6]]
    assert batches[1][0] >= 0.2  # held: the first of them waited the hold out


def test_a_hold_ends_early_once_nothing_new_came_for_the_quiet_time() -> None:
    # The storm's tail: a few more, then nothing; posted a quiet time after the last, not a hold later.
    batches = lane_batches([Hold(5.0, quiet=0.1)], [(0, 1), (0.03, 2), (0.03, 3)], settle=0.3)
    assert [batch for _, batch in batches] == [[1], [2, 3]]
    assert 0.1 <= batches[1][0] < 1.0


def test_a_hold_lasts_at_most_its_longest_while_a_storm_keeps_coming() -> None:
    # A trickle that is never quiet for 0.1 s: cut at 0.2 s from the first arrival, the rest held again.
    arrivals = [(0, 0), *((0.04, n) for n in range(1, 10))]
    batches = lane_batches([Hold(0.2, quiet=0.1), Hold(0.2, quiet=0.1)], arrivals, settle=0.35)
    assert [n for _, batch in batches for n in batch] == list(range(10))  # each once, in order
    assert len(batches) == 3
    assert 3 <= len(batches[1][1]) <= 7  # about 0.2 s of arrivals


def test_after_a_hold_with_nothing_coming_the_next_arrival_is_taken_at_once() -> None:
    batches = lane_batches([Hold(0.1, quiet=0.05)], [(0, 1), (0.25, 2)], settle=0.1)
    assert [batch for _, batch in batches] == [[1], [2]]
    assert batches[1][0] - 0.25 < 0.08  # no hold: quiet times again


def test_the_webhook_and_email_rule_folds_a_trickle_after_max_alone_lone_sends() -> None:
    from workers.folds import StormRule

    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    rule = StormRule(1.0, 3, FoldSettings(max_alone=3, hold=20), clock=lambda: now[0], sleep=sleep)
    for _ in range(3):  # the budget lets each out alone; they spend its burst of 3
        assert not rule.worth_folding("hook", 1)
        rule.pace("hook")
    assert rule.worth_folding("hook", 1)  # the 4th within 20 s: a storm
    now[0] += 60
    assert not rule.worth_folding("hook", 1)  # quiet again
    fast = StormRule(1000.0, 100, FoldSettings(max_alone=3, hold=20), clock=lambda: now[0])
    for _ in range(10):  # an endpoint that takes far more than comes: each alone
        assert not fast.worth_folding("hook", 1)
        fast.pace("hook")
