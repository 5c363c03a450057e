"""One conversation per incident in Mattermost and Slack (API mode), against `alertq sink`'s emulation of
both APIs, with real worker processes and the real broker. Notifications are enqueued with
`alertq-enqueue` as openITCOCKPIT's notification commands run it, one process per contact at once as
the core forks them; escalation steps are published as the escalator publishes them. What the chat got
is read back from the sink's record of every API call, and as a reader sees the chat."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

from broker import names
from broker.publisher import ConfirmedPublisher, json_properties
from schemas.ack import AckMessage, Reply
from schemas.settings import Settings
from tests.conftest import require, run
from tests.support import amqp
from tests.support.ack_processes import SLACK_SECRET, ack_forwarder, ack_listener
from tests.support.conversations import (
    MATTERMOST_CHANNEL,
    SLACK_CHANNEL,
    Service,
    api_env,
    buttons,
    colour,
    command_line,
    enqueue_all,
    escalation_event,
    ok,
    root_text,
    roots,
    sqlite_store,
    summary,
    thread,
    wait_calls,
)
from tests.support.rabbit import free_port
from tests.support.sink import Sink, chromium, run_chromium, sinks
from tests.support.workers import WorkerProcess, publish

CRITICAL = "DISK CRITICAL - free space: / 120 MB (1%)"
RECOVERED = "DISK OK - free space: / 5120 MB (42%)"
CONTACTS = ("alice", "bob")

# What each notification does to the conversation, in the calls' own words; the root's list of
# contacts may need one edit right after it (when the second contact's copy came while it was posted).
MATTERMOST_CALLS = {
    "root": ["GET /teams/name/ops/channels/name/alerts", "POST /posts root"],
    "renotification": ["POST /posts reply"],
    "escalation": ["POST /posts reply"],
    "ack": ["PUT /posts/{id}/patch", "POST /posts reply"],
    "recovery": ["PUT /posts/{id}/patch", "POST /posts reply"],
}
SLACK_CALLS = {
    "root": ["chat.postMessage root"],
    "renotification": ["chat.postMessage reply"],
    "escalation": ["chat.postMessage reply"],
    "ack": ["chat.update", "chat.postMessage reply"],
    "recovery": ["chat.update", "chat.postMessage reply"],
}
CONTACTS_EDIT = {"mattermost": "PUT /posts/{id}/patch", "slack": "chat.update"}
ROOT_CALL = {"mattermost": "POST /posts root", "slack": "chat.postMessage root"}
REPLY_CALL = {"mattermost": "POST /posts reply", "slack": "chat.postMessage reply"}


@pytest.fixture
def sink(tmp_path: Path) -> Any:
    with sinks(tmp_path) as start:
        yield start()


def one_root(sink: Sink, chat: str, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """The one root there is, once `predicate` holds for it."""
    found: list[dict[str, Any]] = []

    def done(_calls: list[dict[str, Any]]) -> bool:
        found[:] = roots(sink, chat)
        return len(found) == 1 and predicate(found[0])

    wait_calls(sink, chat, done, what)
    return found[0]


def replies_seen(sink: Sink, chat: str, count: int) -> Callable[[list[dict[str, Any]]], bool]:
    def done(_calls: list[dict[str, Any]]) -> bool:
        found = roots(sink, chat)
        return len(found) == 1 and len(thread(sink, found[0])) >= count

    return done


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_an_incident_is_one_root_with_its_thread_edited_on_ack_and_recovery(
    chat: str,
    store_url: str,
    sink: Sink,
    alertq_env: dict[str, str],
    amqp_url: str,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = api_env(alertq_env, sink, chat, store_url)
    worker = start_worker(env, channel=chat)
    disk = Service.new()

    # CRITICAL, to two contacts on the same destination: one root naming both, with its button.
    enqueue_all(env, [command_line(chat, disk, "PROBLEM", 2, CRITICAL, c, 1, problem_id="4711") for c in CONTACTS])
    root = one_root(sink, chat, lambda r: all(c in root_text(r) for c in CONTACTS), "one root naming both")
    assert "CRITICAL" in root_text(root) and CRITICAL in root_text(root)
    assert buttons(root) == ["Acknowledge"]
    assert colour(root) == "#d9534f"

    # A re-notification (both contacts again) and an escalation step to carol: thread replies.
    enqueue_all(env, [command_line(chat, disk, "PROBLEM", 2, CRITICAL, c, 2, problem_id="4711") for c in CONTACTS])
    wait_calls(sink, chat, replies_seen(sink, chat, 1), "the re-notification's reply")
    publish(amqp_url, [escalation_event(chat, disk, "carol", 1)], channel=chat)
    wait_calls(sink, chat, replies_seen(sink, chat, 2), "the escalation step's reply")

    # ACKNOWLEDGEMENT from the core: the root says who and why, its button gone; a reply says it too.
    enqueue_all(
        env,
        [
            command_line(
                chat,
                disk,
                "ACKNOWLEDGEMENT",
                2,
                CRITICAL,
                c,
                2,
                author="jdoe",
                comment="disk cleanup",
                problem_id="4711",
            )
            for c in CONTACTS
        ],
    )
    wait_calls(sink, chat, replies_seen(sink, chat, 3), "the acknowledgement's reply")
    root = one_root(sink, chat, lambda r: "jdoe" in root_text(r), "the root acknowledged")
    assert "disk cleanup" in root_text(root)
    assert buttons(root) == []

    # RECOVERY: the root in the recovered colour, "recovered after"; a reply; the conversation closed.
    enqueue_all(env, [command_line(chat, disk, "RECOVERY", 0, RECOVERED, c, 3, problem_id="0") for c in CONTACTS])
    wait_calls(sink, chat, replies_seen(sink, chat, 4), "the recovery's reply")
    root = one_root(sink, chat, lambda r: "RECOVERED after" in root_text(r), "the root recovered")
    assert colour(root) == "#5cb85c"
    assert "jdoe" in root_text(root) and all(c in root_text(root) for c in CONTACTS)
    assert buttons(root) == []

    replies = [root_text(reply) for reply in thread(sink, root)]
    assert "notification 2" in replies[0]
    assert "Escalated (step 1" in replies[1] and "@carol" in replies[1]
    assert "ACKNOWLEDGEMENT" in replies[2] and "jdoe" in replies[2] and "disk cleanup" in replies[2]
    assert "RECOVERY" in replies[3] and "after" in replies[3]

    # The exact calls: nothing refused, nothing more than one post, two edits and the replies (plus at
    # most the one edit that brings the root's list of contacts up to date right after it was posted).
    worker.wait_log("delivery.delivered", count=9)
    calls = sink.calls(chat)
    assert ok(calls) == calls, [(summary(c), c["status"], c["error"]) for c in calls]
    seen = [summary(c) for c in calls]
    expected = MATTERMOST_CALLS if chat == "mattermost" else SLACK_CALLS
    plan = [call for step in expected.values() for call in step]
    root_calls = len(expected["root"])
    if seen[root_calls : root_calls + 1] == [CONTACTS_EDIT[chat]]:
        del seen[root_calls]
    assert seen == plan
    channel = {c["body"].get("channel") or c["body"].get("channel_id") for c in calls if c["method"] == "POST"}
    assert len(channel) == 1
    if chat == "slack":
        assert channel == {SLACK_CHANNEL}
    else:
        assert calls[0]["path"].endswith("/" + MATTERMOST_CHANNEL.replace("/", "/channels/name/"))


# -- webhook mode: one post per destination ------------------------------------------------------------


@pytest.mark.parametrize(("window", "posts"), [("120", 1), ("0", 2)])
@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_webhook_mode_posts_one_notification_for_two_contacts_once(
    chat: str,
    window: str,
    posts: int,
    sink: Sink,
    alertq_env: dict[str, str],
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    prefix = f"ALERTQ_CHANNELS__{chat.upper()}__"
    env = {
        **alertq_env,
        f"{prefix}URL": f"{sink.url}/hooks/{chat}/team",
        f"{prefix}DEDUPE_WINDOW": window,
        "ALERTQ_CONVERSATIONS__STORE": sqlite_store(tmp_path),
        "ALERTQ_RETRY__DELAYS": "1,2",
    }
    worker = start_worker(env, channel=chat)
    disk = Service.new()

    enqueue_all(env, [command_line(chat, disk, "PROBLEM", 2, CRITICAL, c, 1) for c in CONTACTS])
    worker.wait_log("delivery.delivered", count=2)
    # The same contact told again (a new notification event) is posted again, as ever.
    enqueue_all(env, [command_line(chat, disk, "PROBLEM", 2, CRITICAL, "alice", 1)])
    worker.wait_log("delivery.delivered", count=3)

    posted = [m for m in sink.messages() if m["channel"] == chat]
    assert len(posted) == posts + 1, [m["rendered"]["title"] for m in posted]
    assert all("CRITICAL" in m["rendered"]["title"] for m in posted)
    folded = worker.events("delivery.folded")
    assert len(folded) == (1 if window != "0" else 0)


# -- a lost reference never loses a notification -------------------------------------------------------


def forget_store(url: str) -> None:
    """The store lost: its SQLite files deleted, or its PostgreSQL tables dropped."""
    if url.startswith("sqlite:///"):
        for path in Path(url.removeprefix("sqlite:///")).parent.glob("*.db*"):
            path.unlink()
        return
    import psycopg

    dsn, _, schema = url.partition("?schema=")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f'DROP SCHEMA "{schema}" CASCADE')  # a test's own schema name, no input


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_a_recovery_after_the_store_was_lost_is_posted_as_a_root_of_its_own(
    chat: str,
    store_url: str,
    sink: Sink,
    alertq_env: dict[str, str],
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    wait_for_root = 3
    env = api_env(alertq_env, sink, chat, store_url, ALERTQ_CONVERSATIONS__WAIT_FOR_ROOT=str(wait_for_root))
    worker = start_worker(env, channel=chat)
    disk = Service.new()
    enqueue_all(env, [command_line(chat, disk, "PROBLEM", 2, CRITICAL, "alice", 1)])
    one_root(sink, chat, lambda r: "CRITICAL" in root_text(r), "the problem's root")

    assert worker.terminate() == 0
    forget_store(store_url)
    start_worker(env, channel=chat)
    created = int(time.time())  # the core's $TIMET$: whole seconds
    enqueue_all(env, [command_line(chat, disk, "RECOVERY", 0, RECOVERED, "alice", 2, timestamp=created)])

    wait_calls(sink, chat, lambda _c: len(roots(sink, chat)) == 2, "the recovery's own root")
    problem, recovery = roots(sink, chat)
    # It first waited `wait_for_root` after its creation for a PROBLEM's root, however quick the worker was.
    [posted] = [c for c in sink.calls(chat) if summary(c) == ROOT_CALL[chat] and RECOVERED in json.dumps(c["body"])]
    assert datetime.fromisoformat(posted["at"]).timestamp() >= created + wait_for_root
    assert "CRITICAL" in root_text(problem)
    assert "RECOVERY" in root_text(recovery) and RECOVERED in root_text(recovery)
    assert colour(recovery) == "#5cb85c"
    assert thread(sink, recovery) == []
    calls = sink.calls(chat)
    assert ok(calls) == calls


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_a_root_deleted_in_the_chat_is_posted_anew_showing_the_acknowledgement(
    chat: str,
    store_url: str,
    sink: Sink,
    alertq_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = api_env(alertq_env, sink, chat, store_url)
    worker = start_worker(env, channel=chat)
    disk = Service.new()
    enqueue_all(env, [command_line(chat, disk, "PROBLEM", 2, CRITICAL, "alice", 1)])
    first = one_root(sink, chat, lambda r: "CRITICAL" in root_text(r), "the problem's root")
    assert requests.delete(f"{sink.url}/api/messages/{first['id']}", timeout=10).status_code in (200, 204)

    enqueue_all(env, [command_line(chat, disk, "ACKNOWLEDGEMENT", 2, CRITICAL, "alice", 1, author="jdoe")])
    worker.wait_log("delivery.delivered", count=2)
    [root] = roots(sink, chat)
    assert root["id"] != first["id"]
    assert "jdoe" in root_text(root) and CRITICAL in root_text(root) and buttons(root) == []
    [reply] = thread(sink, root)
    assert "ACKNOWLEDGEMENT" in root_text(reply)
    assert worker.events("conversation.root_gone")
    # Refused: the edit of the deleted root (Mattermost answers 403, so the client reads the post: 404).
    refused = [summary(c) for c in sink.calls(chat) if c not in ok([c])]
    assert refused == ([CONTACTS_EDIT[chat], "GET /posts/{id}"] if chat == "mattermost" else [CONTACTS_EDIT[chat]])


# -- errors: a clear dead letter naming the cause, or truncation ------------------------------------------

REFUSALS = [
    ("mattermost", {"mattermost__tokens": "another-token"}, "mattermost refused the bot token (401)"),
    ("mattermost", {"mattermost__channels": "ops/other"}, "no channel ops/alerts (404)"),
    ("mattermost", {"mattermost__not_member": "ops/alerts"}, "may not post in channel ops/alerts (403)"),
    ("slack", {"slack__tokens": "xoxb-another"}, "slack refused the bot token (invalid_auth)"),
    ("slack", {"slack__channels": "C0OTHER"}, "slack channel C0ALERTS not found (channel_not_found)"),
    ("slack", {"slack__not_in_channel": "C0ALERTS"}, "not a member of slack channel C0ALERTS (not_in_channel)"),
]


@pytest.mark.parametrize(
    ("chat", "sink_settings", "cause"),
    REFUSALS,
    ids=["mm-token", "mm-channel", "mm-member", "slack-token", "slack-channel", "slack-member"],
)
def test_a_refused_token_or_channel_is_a_permanent_dead_letter_naming_the_cause(
    chat: str,
    sink_settings: dict[str, str],
    cause: str,
    alertq_env: dict[str, str],
    amqp_url: str,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    with sinks(tmp_path) as start:
        sink = start(**sink_settings)
        env = api_env(alertq_env, sink, chat, sqlite_store(tmp_path))
        worker = start_worker(env, channel=chat)
        enqueue_all(env, [command_line(chat, Service.new(), "PROBLEM", 2, CRITICAL, "alice", 1)])
        [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=60)
        assert roots(sink, chat) == []

    assert dead.headers[names.HEADER_DEAD_REASON] == "permanent"
    assert cause in str(dead.headers[names.HEADER_LAST_ERROR])
    [logged] = worker.wait_log("delivery.dead_lettered")
    assert cause in logged["error"]
    token = env[f"ALERTQ_CHANNELS__{chat.upper()}__BOT_TOKEN"]
    assert token not in worker.text()
    assert token not in json.dumps(dead.headers, default=str)  # nor in what the dead letter tells


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_a_very_long_output_is_cut_to_what_the_chat_takes_in_the_root_and_its_edit(
    chat: str,
    sink: Sink,
    alertq_env: dict[str, str],
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = api_env(alertq_env, sink, chat, sqlite_store(tmp_path))
    worker = start_worker(env, channel=chat)
    disk = Service.new()
    long_output = "DISK CRITICAL " + "x" * 60_000
    enqueue_all(env, [command_line(chat, disk, "PROBLEM", 2, long_output, "alice", 1)])
    enqueue_all(env, [command_line(chat, disk, "RECOVERY", 0, "DISK OK " + "y" * 60_000, "alice", 2)])
    worker.wait_log("delivery.delivered", count=2)

    [root] = roots(sink, chat)
    assert "(truncated)" in root_text(root) and "RECOVERED" in root_text(root)
    [reply] = thread(sink, root)
    assert "(truncated)" in root_text(reply)
    calls = sink.calls(chat)
    assert ok(calls) == calls
    assert len(max((json.dumps(c["body"]) for c in calls), key=len)) < 60_000


# -- order with two workers and a slow chat ---------------------------------------------------------------


def problem_and_recovery(chat: str, service: Service, contact: str = "alice") -> list[dict[str, Any]]:
    """A PROBLEM and its RECOVERY as the core sends them a moment apart (built as alertq-enqueue builds them)."""
    problem = escalation_event(chat, service, contact, 0)
    problem["escalation"] = None
    recovery = {
        **problem,
        "event_id": str(uuid.uuid4()),
        "created_at": (datetime.fromisoformat(problem["created_at"]) + timedelta(milliseconds=5)).isoformat(),
        "notification_type": "RECOVERY",
        "state": 0,
        "output": RECOVERED,
        "notification_number": 2,
    }
    return [problem, recovery]


def incident_of(root: dict[str, Any]) -> str:
    """The service a root is about ("Disk 17"), from what it shows."""
    match = re.search(r"(Disk \d+) is", root_text(root))
    assert match is not None, root_text(root)
    return match.group(1)


def wait_all_recovered(sink: Sink, chat: str, incidents: int, timeout: float = 300.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = roots(sink, chat)
        if sum("RECOVERED" in root_text(r) for r in found) >= incidents:
            return found
        time.sleep(1)
    recovered = sum("RECOVERED" in root_text(r) for r in found)
    raise AssertionError(f"{recovered} of {incidents} roots recovered within {timeout:.0f} s ({len(found)} roots)")


class CallLog:
    """The chat's calls at the sink, read as they come (GET /api/calls?after=…). Cheap to poll in a storm:
    reading all of a thousand messages back several times a second would take a core from the workers."""

    def __init__(self, sink: Sink, chat: str) -> None:
        self.sink, self.chat = sink, chat
        self.calls: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        self.calls += self.sink.calls(self.chat, after=self.calls[-1]["seq"] if self.calls else 0)
        return self.calls

    def roots_posted(self) -> int:
        return sum(summary(c) == ROOT_CALL[self.chat] for c in ok(self.read()))

    def threads_replied(self) -> int:
        """How many roots have a reply (each incident's RECOVERY is its one reply)."""
        taken = ok(self.read())
        return len(
            {
                c["body"].get("root_id") or c["body"].get("thread_ts")
                for c in taken
                if summary(c) == REPLY_CALL[self.chat]
            }
        )

    def wait(self, count: Callable[[], int], wanted: int, what: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while (seen := count()) < wanted:
            assert time.monotonic() < deadline, f"{seen} of {wanted} {what} within {timeout:.0f} s"
            time.sleep(0.2)


def test_two_workers_and_a_slow_chat_never_let_a_follow_up_overtake_its_root(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    incidents = 200
    with sinks(tmp_path) as start:
        sink = start(mattermost__answer_delay="0.2", mattermost__rate_limit__enabled="false")
        env = api_env(
            alertq_env,
            sink,
            "mattermost",
            sqlite_store(tmp_path),
            two_way=False,
            ALERTQ_CHANNELS__MATTERMOST__API_RATE_LIMIT__PER_SECOND="1000",
            ALERTQ_CHANNELS__MATTERMOST__API_RATE_LIMIT__BURST="1000",
            ALERTQ_WORKER__PARK_DELAY="1",
            ALERTQ_LOG__LEVEL="info",
        )
        workers = [start_worker(env, channel="mattermost") for _ in range(2)]
        services = [Service.new(service_name=f"Disk {n}") for n in range(incidents)]
        # PROBLEM and RECOVERY of each incident back to back: with round-robin delivery one worker gets
        # the PROBLEMs, the other the RECOVERYs, which come before their roots exist.
        publish(amqp_url, [e for s in services for e in problem_and_recovery("mattermost", s)], channel="mattermost")

        seen = CallLog(sink, "mattermost")
        seen.wait(seen.threads_replied, incidents, "recoveries in their threads")
        found = wait_all_recovered(sink, "mattermost", incidents, timeout=60)
        messages = sink.messages()
        calls = sink.calls("mattermost")

    per_incident = Counter(incident_of(root) for root in found)
    double_roots = sum(n - 1 for n in per_incident.values())
    orphans = [m for m in messages if m.get("api") and m["api"]["orphan_of"]]
    waited = sum(len(w.events("delivery.deferred")) for w in workers)  # how often the race was met
    print(
        f"\n{incidents} incidents, 2 workers: {len(found)} roots, {double_roots} double roots, "
        f"{len(orphans)} orphans; follow-ups that waited for their root: {waited}"
    )
    assert (len(found), double_roots, len(orphans)) == (incidents, 0, 0)
    root_ids = {r["id"] for r in found}
    replies = [m for m in messages if m.get("api") and m["api"]["root"] is not None]
    assert len(replies) == incidents and {r["api"]["root"] for r in replies} == root_ids
    # Every edit found its root: nothing was refused (an edit before its root would be a 403).
    assert ok(calls) == calls, [(summary(c), c["status"], c["error"]) for c in calls if c not in ok([c])]
    posted = {c["answer"]["id"]: c["seq"] for c in calls if summary(c) == "POST /posts root"}
    for call in calls:
        if summary(call) == "PUT /posts/{id}/patch":
            post_id = call["path"].split("/")[-2]
            assert posted[post_id] < call["seq"]


def storm_settings(chat: str) -> tuple[dict[str, str], dict[str, str]]:
    """The sink's settings and the worker's for a storm: every call answered after 50 ms (so that posts
    are in flight when the worker dies), no rate limit on either side (the storm is about crashes, and
    500 incidents at Slack's 1 post/s would take a quarter of an hour), and a lane that holds the whole
    prefetch window (parking a single target's backlog in the broker only churns it)."""
    prefix = f"ALERTQ_CHANNELS__{chat.upper()}__"
    limits = ("API_RATE_LIMIT",) if chat == "mattermost" else ("API_POST_RATE_LIMIT", "API_UPDATE_RATE_LIMIT")
    worker = {f"{prefix}{limit}__{key}": "1000" for limit in limits for key in ("PER_SECOND", "BURST")}
    worker |= {"ALERTQ_WORKER__LANE_BACKLOG": "1000", "ALERTQ_LOG__LEVEL": "info"}
    if chat == "mattermost":
        return {"mattermost__answer_delay": "0.05", "mattermost__rate_limit__enabled": "false"}, worker
    sink = {"slack__answer_delay": "0.05"}
    sink |= {f"slack__{limit}__enabled": "false" for limit in ("post_rate_limit", "update_rate_limit")}
    return sink, worker


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_a_worker_killed_mid_storm_leaves_at_most_one_percent_double_roots(
    chat: str,
    alertq_env: dict[str, str],
    amqp_url: str,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    incidents = 500
    sink_settings, worker_settings = storm_settings(chat)
    with sinks(tmp_path) as start:
        sink = start(**sink_settings)
        env = api_env(alertq_env, sink, chat, sqlite_store(tmp_path), two_way=False, **worker_settings)
        worker = start_worker(env, channel=chat)
        services = [Service.new(service_name=f"Disk {n}") for n in range(incidents)]
        publish(amqp_url, [e for s in services for e in problem_and_recovery(chat, s)], channel=chat)

        seen = CallLog(sink, chat)
        kills = 0
        for wanted in (incidents * 3 // 10, incidents * 6 // 10):  # SIGKILL twice, mid-storm; start it again
            seen.wait(seen.roots_posted, wanted, "roots posted")
            worker.kill()
            kills += 1
            worker = start_worker(env, channel=chat)

        seen.wait(seen.threads_replied, incidents, "recoveries in their threads")
        found = wait_all_recovered(sink, chat, incidents, timeout=60)
        messages = sink.messages()
        calls = sink.calls(chat)

    per_incident = Counter(incident_of(root) for root in found)
    double_roots = sum(n - 1 for n in per_incident.values())
    orphans = [m for m in messages if m.get("api") and m["api"]["orphan_of"]]
    print(
        f"\n{chat}: {incidents} incidents, worker SIGKILLed {kills}x mid-storm: {len(found)} roots, "
        f"{double_roots} double roots ({100 * double_roots / incidents:.1f} %), {len(orphans)} orphans"
    )
    assert len(per_incident) == incidents
    assert double_roots <= incidents // 100
    assert orphans == []
    assert ok(calls) == calls


# -- acknowledgements clicked in API mode ------------------------------------------------------------------


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_a_click_in_api_mode_acknowledges_the_root_through_the_api_keeping_its_content(
    chat: str,
    alertq_env: dict[str, str],
    amqp_url: str,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    listener_port = free_port()
    listener = f"http://127.0.0.1:{listener_port}"
    with sinks(tmp_path) as start:
        sink = start(slack_actions_url=f"{listener}/slack/actions", slack_signing_secret=SLACK_SECRET)
        env = api_env(
            alertq_env,
            sink,
            chat,
            sqlite_store(tmp_path),
            ALERTQ_CHANNELS__MATTERMOST__ACK_URL=f"{listener}/mattermost/actions",
        )
        start_worker(env, channel=chat)
        with ack_listener(env, tmp_path / "listener.log", listener_port, slack_signing_secret=SLACK_SECRET) as running:
            enqueue_all(env, [command_line(chat, Service.new(), "PROBLEM", 2, CRITICAL, "alice", 1)])
            root = one_root(sink, chat, lambda r: buttons(r) == ["Acknowledge"], "the root with its button")
            before = len(sink.calls(chat))
            [button] = root["rendered"]["buttons"]
            clicked = sink.click(root["id"], button["key"], user_name="dave")
            assert clicked.status_code == 200, clicked.text
            root = one_root(sink, chat, lambda r: buttons(r) == [], "the root without its button")
            by_listener = [summary(c) for c in sink.calls(chat)[before:]]
            [ack] = amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=30)
            assert "Traceback" not in running.log_text()

    assert "Acknowledgement by @dave sent via alertq: waiting for the monitoring core to confirm." in root_text(root)
    assert CRITICAL in root_text(root) and "alice" in root_text(root)  # the root kept what it said
    assert ack.json["chat_user"] == "dave"
    # Mattermost applies the click's answer itself: the listener only read the post; Slack's message was
    # updated by the listener with chat.update (the API client the workers use).
    assert by_listener == (["GET /posts/{id}"] if chat == "mattermost" else ["chat.update"])


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_a_failed_ack_is_told_in_the_roots_thread_through_the_api(
    chat: str,
    declared: Settings,
    sink: Sink,
    alertq_env: dict[str, str],
    amqp_url: str,
    httpserver: HTTPServer,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    httpserver.expect_request("/nagios_module/cmd/submit_bulk_naemon.json").respond_with_data("no", status=403)
    env = api_env(alertq_env, sink, chat, sqlite_store(tmp_path), two_way=False)
    start_worker(env, channel=chat)
    enqueue_all(env, [command_line(chat, Service.new(), "PROBLEM", 2, CRITICAL, "alice", 1)])
    root = one_root(sink, chat, lambda r: CRITICAL in root_text(r), "the root")
    place = root["api"]
    reply = (
        Reply(channel_id=place["channel_id"], post_id=place["id"], channel_name="alerts")
        if chat == "mattermost"
        else Reply(channel_id=place["channel_id"], message_ts=place["id"], response_url=f"{sink.url}/nowhere")
    )
    ack = AckMessage(
        ack_id=str(uuid.uuid4()),
        received_at=datetime.now(UTC),
        source=chat,
        chat_user="dave",
        author="dave",
        comment="via alertq",
        kind="service",
        host_id="h",
        service_id="s",
        event_id="e",
        reply=reply,
    )
    target = {
        "ALERTQ_ACK_TARGET__KIND": "openitcockpit",
        "ALERTQ_ACK_TARGET__URL": httpserver.url_for("/"),
        "ALERTQ_ACK_TARGET__API_KEY": "oitc-api-key-5f1e2d3c4b5a",
    }
    with ack_forwarder({**env, **target}, tmp_path / "fwd.log") as forwarder:
        connection = amqp.connect(amqp_url)
        try:
            ConfirmedPublisher(connection.channel()).publish(
                names.ACKS_EXCHANGE, f"ack.{chat}", ack.to_json(), json_properties(ack.ack_id)
            )
        finally:
            connection.close()
        wait_calls(sink, chat, lambda _c: len(thread(sink, root)) == 1, "the failure in the root's thread")
        assert '"through": "api"' in forwarder.log_text()

    [told] = thread(sink, root)
    assert "did NOT reach" in root_text(told) and "@dave" in root_text(told)


# -- what a reader sees ---------------------------------------------------------------------------------


def test_conversations_in_the_browser(
    sink: Sink,
    alertq_env: dict[str, str],
    amqp_url: str,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """Two incidents as the sink's page shows them in Chromium: one from PROBLEM to RECOVERY (its root
    edited, its thread), one still open with its button. ALERTQ_CONVERSATION_SCREENSHOT=<png> keeps
    the screenshot (docs/images/conversation.png is one)."""
    require(chromium() is not None, "chromium is not installed (apt-get install chromium)")
    env = api_env(alertq_env, sink, "mattermost", sqlite_store(tmp_path))
    worker = start_worker(env, channel="mattermost")
    disk, load = Service.new(service_name="Disk /var"), Service.new(host_name="db02", service_name="Load")

    enqueue_all(env, [command_line("mattermost", disk, "PROBLEM", 2, CRITICAL, c, 1) for c in CONTACTS])
    worker.wait_log("delivery.delivered", count=2)
    enqueue_all(env, [command_line("mattermost", disk, "PROBLEM", 2, CRITICAL, c, 2) for c in CONTACTS])
    publish(amqp_url, [escalation_event("mattermost", disk, "carol", 1)], channel="mattermost")
    worker.wait_log("delivery.delivered", count=5)
    enqueue_all(
        env,
        [
            command_line("mattermost", disk, "ACKNOWLEDGEMENT", 2, CRITICAL, c, 2, author="jdoe", comment="cleaning")
            for c in CONTACTS
        ],
    )
    worker.wait_log("delivery.delivered", count=7)
    enqueue_all(env, [command_line("mattermost", disk, "RECOVERY", 0, RECOVERED, c, 3) for c in CONTACTS])
    worker.wait_log("delivery.delivered", count=9)
    enqueue_all(env, [command_line("mattermost", load, "PROBLEM", 1, "LOAD WARNING - load average: 9.1", "bob", 1)])
    worker.wait_log("delivery.delivered", count=10)
    [recovered, _] = roots(sink, "mattermost")

    dom = run_chromium(["--dump-dom", "--virtual-time-budget=2000"], sink.url + "/")
    assert dom.returncode == 0, dom.stderr[-2000:]
    thread_html = dom.stdout[dom.stdout.index(f'id="thread-{recovered["id"]}"') :]
    assert "4 replies" in thread_html
    assert thread_html.index("notification 2") < thread_html.index("@carol") < thread_html.index("RECOVERY")
    shot = tmp_path / "conversation.png"
    taken = run_chromium(
        [f"--screenshot={shot}", "--window-size=1000,1400", "--virtual-time-budget=3000"], sink.url + "/"
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    if os.environ.get("ALERTQ_CONVERSATION_SCREENSHOT"):
        shutil.copy(shot, os.environ["ALERTQ_CONVERSATION_SCREENSHOT"])


# -- the store is never a condition of delivery ------------------------------------------------------------

UNUSABLE_STORE = "sqlite:////proc/alertq-cannot-write-here/conversations.db"


def test_webhook_mode_posts_as_before_when_the_store_cannot_be_used(
    sink: Sink, alertq_env: dict[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    env = {
        **alertq_env,
        "ALERTQ_CHANNELS__MATTERMOST__URL": f"{sink.url}/hooks/mattermost/team",
        "ALERTQ_CONVERSATIONS__STORE": UNUSABLE_STORE,
    }
    worker = start_worker(env, channel="mattermost")
    enqueue_all(env, [command_line("mattermost", Service.new(), "PROBLEM", 2, CRITICAL, c, 1) for c in CONTACTS])
    worker.wait_log("delivery.delivered", count=2)
    assert len(sink.messages()) == 2  # no dedupe without its store, and nothing held back
    assert worker.events("delivery.dedupe_unavailable")


def test_api_mode_refuses_to_start_without_its_store_in_one_line(
    sink: Sink, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    env = api_env(alertq_env, sink, "mattermost", UNUSABLE_STORE)
    result = run(["alertq", "worker", "mattermost"], env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: conversations.store cannot be opened (")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
