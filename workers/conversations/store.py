"""The conversations' store: per destination and incident, where the root post is, what state it shows,
who was notified, and what each event already did.

Tables (SQLite or PostgreSQL through state/db.py, the same code and URL style as the escalator's
`state_store`):

- `conversations`: one row per conversation; at most one open per (destination, incident), which the
  database enforces (a unique index over open rows), so two workers seeing the first PROBLEM at once
  start one conversation. The row holds the root's reference (`root_channel`, `root_ref`: a Mattermost
  post id, or a Slack channel and ts) once it is posted, the claim to post it (`root_claimed_by`, until
  `root_claimed_until`: a lease, so a crashed claimer's root is posted by whoever comes next), the event
  the root shows and the state it is in (open, acknowledged, recovered, superseded), and a `version`
  that every change the root must show counts up.
- `renderings`: per conversation, one row per notification "fingerprint" (type, number, escalation
  step): the same notification for several contacts is rendered once. The row is a claim too (the
  event that renders it, until when), marked done once the chat took it.
- `notified`: the contacts a conversation's notifications reached (the root lists them).
- `events`: every event id a conversation handled and what was done (root, reply, edit, folded), so a
  redelivered event is skipped.
- `webhook_posts`: webhook mode's dedupe window (workers/conversations/folding.py).
- `digests`, `digest_items`, `digest_parts`, `digest_members`: alert storms folded into digests
  (workers/conversations/storms.py). A digest is claimed by one worker (a lease, like a root), lists its
  events (every event id at most once: the primary key), each assigned to an item (a line) and a part
  (a post) when the digest is made, so a digest re-sent after a crash is split the same way and only
  the parts not yet recorded are posted. In API mode each item is the root of its incident's
  conversation (`digest_members`), so follow-ups edit the part and reply in its thread.

Every claim is one transaction: an INSERT that only one writer can make, or, when the row exists, a read
of it under its lock (`FOR UPDATE` on PostgreSQL; SQLite's BEGIN IMMEDIATE locks the database) and an
update decided on what was read.

SQL text is composed only of constants (column lists, `FOR UPDATE`); every value is a parameter.
"""

# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from state.db import Database, Transaction, open_database

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS conversations (
        id {id_type} PRIMARY KEY,
        destination TEXT NOT NULL,
        incident TEXT NOT NULL,
        problem_id TEXT,
        state TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        closed_at DOUBLE PRECISION,
        closed_by_at DOUBLE PRECISION,
        root_event TEXT NOT NULL,
        root_fingerprint TEXT NOT NULL,
        root_channel TEXT,
        root_ref TEXT,
        root_claimed_by TEXT,
        root_claimed_until DOUBLE PRECISION,
        ack_author TEXT,
        ack_comment TEXT,
        recovery_event TEXT,
        version INTEGER NOT NULL DEFAULT 0,
        contacts_edited INTEGER NOT NULL DEFAULT 0,
        root_generation INTEGER NOT NULL DEFAULT 0,
        shown_contacts INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS conversations_open ON conversations (destination, incident) "
    "WHERE closed_at IS NULL",
    "CREATE INDEX IF NOT EXISTS conversations_latest ON conversations (destination, incident, id)",
    """CREATE TABLE IF NOT EXISTS renderings (
        conversation_id BIGINT NOT NULL REFERENCES conversations (id),
        fingerprint TEXT NOT NULL,
        owner_event TEXT NOT NULL,
        claimed_until DOUBLE PRECISION NOT NULL,
        first_created DOUBLE PRECISION NOT NULL,
        done_at DOUBLE PRECISION,
        PRIMARY KEY (conversation_id, fingerprint)
    )""",
    """CREATE TABLE IF NOT EXISTS notified (
        conversation_id BIGINT NOT NULL REFERENCES conversations (id),
        contact TEXT NOT NULL,
        seq DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (conversation_id, contact)
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        event_id TEXT PRIMARY KEY,
        conversation_id BIGINT,
        action TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_at ON events (at)",
    """CREATE TABLE IF NOT EXISTS webhook_posts (
        destination TEXT NOT NULL,
        incident TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        owner_event TEXT NOT NULL,
        contacts TEXT NOT NULL,
        claimed_until DOUBLE PRECISION NOT NULL,
        posted_at DOUBLE PRECISION,
        first_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (destination, incident, fingerprint)
    )""",
    """CREATE TABLE IF NOT EXISTS digests (
        id {id_type} PRIMARY KEY,
        destination TEXT NOT NULL,
        claimed_by TEXT NOT NULL,
        claimed_until DOUBLE PRECISION NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        posted_at DOUBLE PRECISION
    )""",
    """CREATE TABLE IF NOT EXISTS digest_items (
        event_id TEXT PRIMARY KEY,
        digest_id BIGINT NOT NULL REFERENCES digests (id),
        position INTEGER NOT NULL,
        part INTEGER NOT NULL,
        lead INTEGER NOT NULL,
        incident TEXT NOT NULL,
        event_json TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS digest_items_digest ON digest_items (digest_id, position)",
    "CREATE INDEX IF NOT EXISTS digest_items_incident ON digest_items (incident)",
    """CREATE TABLE IF NOT EXISTS digest_parts (
        digest_id BIGINT NOT NULL REFERENCES digests (id),
        part INTEGER NOT NULL,
        channel TEXT NOT NULL,
        ref TEXT NOT NULL,
        posted_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (digest_id, part)
    )""",
    """CREATE TABLE IF NOT EXISTS digest_members (
        conversation_id BIGINT PRIMARY KEY REFERENCES conversations (id),
        digest_id BIGINT NOT NULL REFERENCES digests (id),
        part INTEGER NOT NULL,
        position INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS digest_members_part ON digest_members (digest_id, part, position)",
)

_COLUMNS = (
    "id, destination, incident, problem_id, state, started_at, closed_at, closed_by_at, root_event, "
    "root_fingerprint, root_channel, root_ref, root_claimed_by, root_claimed_until, ack_author, ack_comment, "
    "recovery_event, version, contacts_edited, root_generation, shown_contacts"
)


class State(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RECOVERED = "recovered"
    SUPERSEDED = "superseded"  # a PROBLEM with another problem id started a new conversation


@dataclass(frozen=True)
class Conversation:
    id: int
    destination: str
    incident: str
    problem_id: str | None
    state: State
    started_at: float
    closed_at: float | None
    closed_by_at: float | None  # created_at of the event that closed it (a RECOVERY)
    root_event: str  # alertq.alert/1 JSON of the event the root shows
    root_fingerprint: str
    root_channel: str | None
    root_ref: str | None  # None: not posted (yet, or any more)
    root_claimed_by: str | None
    root_claimed_until: float | None
    ack_author: str | None
    ack_comment: str | None
    recovery_event: str | None
    version: int
    contacts_edited: bool
    root_generation: int  # how many roots were lost (deleted in the chat) and posted anew
    shown_contacts: int  # how many notified contacts the root lists, as last posted or edited

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class Claim(StrEnum):
    MINE = "mine"  # this event renders it (a new claim, its own earlier one, or one whose lease ran out)
    DONE = "done"  # rendered already (by this event or another's): fold into it
    BUSY = "busy"  # another event holds a live claim: wait for it


class WebhookDecision(StrEnum):
    POST = "post"  # this copy holds the claim: post it, then mark it posted (or release it)
    AGAIN = "again"  # the core told this contact again: post it again, as ever; the claim is another's
    FOLD = "fold"  # another contact's copy was posted within the window
    DONE = "done"  # this very event was posted (a redelivery)
    WAIT = "wait"  # another contact's copy is being posted right now


@dataclass(frozen=True)
class DigestItem:
    """One line of a digest: the event it shows (`lead`) and every event id folded into it."""

    position: int
    part: int
    incident: str
    event_json: str
    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class DigestRecord:
    id: int
    destination: str
    claimed_by: str
    claimed_until: float
    posted_at: float | None


@dataclass(frozen=True)
class Member:
    """A conversation whose root is a line of a digest part."""

    digest_id: int
    part: int
    position: int


@dataclass(frozen=True)
class MemberState:
    """What a digest line shows of its conversation now."""

    position: int
    event_json: str
    state: State
    ack_author: str | None
    recovery_event: str | None


@dataclass(frozen=True)
class NewMember:
    """A conversation to start for a digest line once its part is posted."""

    incident: str
    problem_id: str | None
    lead_event: str
    event_json: str
    fingerprint: str
    started_at: float
    position: int
    event_ids: tuple[str, ...]
    contacts: tuple[str, ...]


def _conversation(row: Sequence[Any]) -> Conversation:
    values = list(row)
    values[0] = int(values[0])
    values[4] = State(values[4])
    values[17] = int(values[17])
    values[18] = bool(values[18])
    values[19] = int(values[19])
    values[20] = int(values[20])
    return Conversation(*values)


class DigestStore:
    """The digest tables, on the conversations' database (mixed into ConversationStore)."""

    db: Database

    def digests_of(self, event_ids: Sequence[str]) -> dict[str, DigestRecord]:
        """The digest each of `event_ids` is in (absent: in none)."""
        found: dict[str, DigestRecord] = {}
        for start in range(0, len(event_ids), 500):
            chunk = list(event_ids[start : start + 500])
            marks = ", ".join(["%s"] * len(chunk))
            rows = self.db.query(
                "SELECT i.event_id, d.id, d.destination, d.claimed_by, d.claimed_until, d.posted_at "
                f"FROM digest_items i JOIN digests d ON d.id = i.digest_id WHERE i.event_id IN ({marks})",
                chunk,
            )
            for event_id, *record in rows:
                found[str(event_id)] = DigestRecord(int(record[0]), str(record[1]), str(record[2]), *record[3:])
        return found

    def new_digest(
        self, destination: str, items: Sequence[DigestItem], owner: str, now: float, lease: float
    ) -> tuple[int, set[str]]:
        """Make a digest of `items`, claimed by `owner`; returns its id and the event ids it holds (one
        already in another digest is left out of this one)."""
        with self.db.transaction() as tx:
            [(digest_id,)] = tx.rows(
                "INSERT INTO digests (destination, claimed_by, claimed_until, created_at) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (destination, owner, now + lease, now),
            )
            held: set[str] = set()
            for item in items:
                for number, event_id in enumerate(item.event_ids):
                    inserted = tx.count(
                        "INSERT INTO digest_items (event_id, digest_id, position, part, lead, incident, event_json) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                        (
                            event_id,
                            digest_id,
                            item.position,
                            item.part,
                            1 if number == 0 else 0,
                            item.incident,
                            item.event_json,
                        ),
                    )
                    if inserted:
                        held.add(event_id)
        return int(digest_id), held

    def take_digest(self, digest_id: int, owner: str, now: float, lease: float) -> bool:
        """Claim posting what is left of a digest: True when `owner` holds it now (it held it, or the
        holder's lease ran out: its worker died mid-digest)."""
        [changed] = self.db.execute_counts(
            (
                "UPDATE digests SET claimed_by = %s, claimed_until = %s WHERE id = %s AND posted_at IS NULL "
                "AND (claimed_by = %s OR claimed_until < %s)",
                (owner, now + lease, digest_id, owner, now),
            )
        )
        return changed == 1

    def release_digest(self, digest_id: int, owner: str) -> None:
        """Posting failed: whoever gets its events next may take it over at once."""
        self.db.execute(
            "UPDATE digests SET claimed_until = 0 WHERE id = %s AND claimed_by = %s AND posted_at IS NULL",
            (digest_id, owner),
        )

    def digest_items(self, digest_id: int) -> list[DigestItem]:
        rows = self.db.query(
            "SELECT position, part, incident, event_json, event_id FROM digest_items WHERE digest_id = %s "
            "ORDER BY position, lead DESC, event_id",
            (digest_id,),
        )
        items: list[DigestItem] = []
        for position, part, incident, event_json, event_id in rows:
            if items and items[-1].position == position:
                last = items[-1]
                items[-1] = DigestItem(
                    last.position, last.part, last.incident, last.event_json, (*last.event_ids, str(event_id))
                )
            else:
                items.append(DigestItem(int(position), int(part), str(incident), str(event_json), (str(event_id),)))
        return items

    def pending_line(self, destination: str, incident: str) -> DigestRecord | None:
        """The digest not yet fully posted that has a line for `incident` in `destination`, if any."""
        rows = self.db.query(
            "SELECT d.id, d.destination, d.claimed_by, d.claimed_until, d.posted_at FROM digest_items i "
            "JOIN digests d ON d.id = i.digest_id WHERE i.incident = %s AND i.lead = 1 AND d.destination = %s "
            "AND d.posted_at IS NULL ORDER BY d.id DESC LIMIT 1",
            (incident, destination),
        )
        if not rows:
            return None
        digest_id, dest, owner, until, posted = rows[0]
        return DigestRecord(int(digest_id), str(dest), str(owner), float(until), posted)

    def join_line(self, digest_id: int, incident: str, event_id: str) -> bool:
        """Another contact's copy of a pending line's problem joins that line (it is settled with it)."""
        with self.db.transaction() as tx:
            rows = tx.rows(
                "SELECT position, part, event_json FROM digest_items WHERE digest_id = %s AND incident = %s "
                "AND lead = 1",
                (digest_id, incident),
            )
            if not rows:
                return False
            position, part, event_json = rows[0]
            return (
                tx.count(
                    "INSERT INTO digest_items (event_id, digest_id, position, part, lead, incident, event_json) "
                    "VALUES (%s, %s, %s, %s, 0, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                    (event_id, digest_id, position, part, incident, event_json),
                )
                == 1
            )

    def digest_created_at(self, digest_id: int) -> float:
        [(created,)] = self.db.query("SELECT created_at FROM digests WHERE id = %s", (digest_id,))
        return float(created)

    def digest_parts(self, digest_id: int) -> dict[int, tuple[str, str]]:
        """The parts posted so far: part → (channel, ref)."""
        rows = self.db.query("SELECT part, channel, ref FROM digest_parts WHERE digest_id = %s", (digest_id,))
        return {int(part): (str(channel), str(ref)) for part, channel, ref in rows}

    def record_digest_part(
        self,
        digest_id: int,
        part: int,
        channel: str,
        ref: str,
        destination: str,
        members: Sequence[NewMember],
        owner: str,
        now: float,
        lease: float,
    ) -> None:
        """Part `part` is posted as `ref`: keep it, and (API mode) start each line's conversation with
        the part as its root, all in one transaction, so a crash leaves the part either unposted (sent
        again) or recorded with its conversations."""
        with self.db.transaction() as tx:
            tx.count(
                "INSERT INTO digest_parts (digest_id, part, channel, ref, posted_at) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (digest_id, part) DO NOTHING",
                (digest_id, part, channel, ref, now),
            )
            tx.count(
                "UPDATE digests SET claimed_until = %s WHERE id = %s AND claimed_by = %s",
                (now + lease, digest_id, owner),
            )
            for member in members:
                rows = tx.rows(
                    "INSERT INTO conversations (destination, incident, problem_id, state, started_at, "
                    "root_event, root_fingerprint, root_channel, root_ref) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (destination, incident) WHERE closed_at IS NULL DO NOTHING RETURNING id",
                    (
                        destination,
                        member.incident,
                        member.problem_id,
                        State.OPEN.value,
                        member.started_at,
                        member.event_json,
                        member.fingerprint,
                        channel,
                        ref,
                    ),
                )
                conversation_id: int | None = int(rows[0][0]) if rows else None
                if conversation_id is not None:
                    tx.count(
                        "INSERT INTO renderings (conversation_id, fingerprint, owner_event, claimed_until, "
                        "first_created, done_at) VALUES (%s, %s, %s, %s, %s, %s)",
                        (conversation_id, member.fingerprint, member.lead_event, now, member.started_at, now),
                    )
                    tx.count(
                        "INSERT INTO digest_members (conversation_id, digest_id, part, position) "
                        "VALUES (%s, %s, %s, %s)",
                        (conversation_id, digest_id, part, member.position),
                    )
                    for contact in member.contacts:
                        tx.count(
                            "INSERT INTO notified (conversation_id, contact, seq) VALUES (%s, %s, %s) "
                            "ON CONFLICT (conversation_id, contact) DO NOTHING",
                            (conversation_id, contact, now),
                        )
                for event_id in member.event_ids:
                    _record_event(tx, event_id, conversation_id, "digest", now)

    def digest_posted(self, digest_id: int, now: float) -> None:
        self.db.execute("UPDATE digests SET posted_at = %s WHERE id = %s", (now, digest_id))

    def member(self, conversation_id: int) -> Member | None:
        rows = self.db.query(
            "SELECT digest_id, part, position FROM digest_members WHERE conversation_id = %s", (conversation_id,)
        )
        return Member(int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def part_lines(self, digest_id: int, part: int) -> list[MemberState]:
        """Every line of a digest part with its conversation's state now."""
        rows = self.db.query(
            "SELECT i.position, i.event_json, c.state, c.ack_author, c.recovery_event FROM digest_items i "
            "LEFT JOIN digest_members m ON m.digest_id = i.digest_id AND m.position = i.position "
            "LEFT JOIN conversations c ON c.id = m.conversation_id "
            "WHERE i.digest_id = %s AND i.part = %s AND i.lead = 1 ORDER BY i.position",
            (digest_id, part),
        )
        return [
            MemberState(int(position), str(event_json), State(state or State.OPEN.value), author, recovery)
            for position, event_json, state, author, recovery in rows
        ]

    def part_count(self, digest_id: int) -> int:
        [(parts,)] = self.db.query("SELECT MAX(part) FROM digest_items WHERE digest_id = %s", (digest_id,))
        return int(parts or 0) + 1

    def leave_digest(self, conversation_id: int) -> None:
        """The conversation's root is no longer its digest line (the part was deleted in the chat)."""
        self.db.execute("DELETE FROM digest_members WHERE conversation_id = %s", (conversation_id,))


class ConversationStore(DigestStore):
    def __init__(self, url: str) -> None:
        self.db: Database = open_database(url, SCHEMA, setting="conversations.store", lock_name="alertq.conversations")

    def describe(self) -> str:
        return self.db.describe()

    def close(self) -> None:
        self.db.close()

    # -- reading ----------------------------------------------------------------------------------------

    def get(self, conversation_id: int) -> Conversation:
        [row] = self.db.query(f"SELECT {_COLUMNS} FROM conversations WHERE id = %s", (conversation_id,))
        return _conversation(row)

    def open_conversation(self, destination: str, incident: str) -> Conversation | None:
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM conversations WHERE destination = %s AND incident = %s AND closed_at IS NULL",
            (destination, incident),
        )
        return _conversation(rows[0]) if rows else None

    def latest_closed(self, destination: str, incident: str) -> Conversation | None:
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM conversations WHERE destination = %s AND incident = %s "
            "AND closed_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            (destination, incident),
        )
        return _conversation(rows[0]) if rows else None

    def event_action(self, event_id: str) -> str | None:
        """What was done for `event_id` already (root, reply, edit, folded, …), or None."""
        rows = self.db.query("SELECT action FROM events WHERE event_id = %s", (event_id,))
        return str(rows[0][0]) if rows else None

    def contacts(self, conversation_id: int) -> list[str]:
        rows = self.db.query(
            "SELECT contact FROM notified WHERE conversation_id = %s ORDER BY seq, contact", (conversation_id,)
        )
        return [str(row[0]) for row in rows]

    # -- conversations ------------------------------------------------------------------------------------

    def start(
        self,
        destination: str,
        incident: str,
        problem_id: str | None,
        *,
        event_id: str,
        event_json: str,
        fingerprint: str,
        started_at: float,
        state: State,
        now: float,
        lease: float,
        closed_by_at: float | None = None,
    ) -> tuple[Conversation, bool]:
        """Start a conversation whose root `event_id` claims to post (True), or return the open one that
        exists (False). With `closed_by_at` it starts closed (a RECOVERY posted as a root of its own):
        there is no open one to collide with, so it always starts."""
        closed_at = now if closed_by_at is not None else None
        while True:
            with self.db.transaction() as tx:
                rows = tx.rows(
                    "INSERT INTO conversations (destination, incident, problem_id, state, started_at, closed_at, "
                    "closed_by_at, root_event, root_fingerprint, root_claimed_by, root_claimed_until) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (destination, incident) WHERE closed_at IS NULL DO NOTHING "
                    f"RETURNING {_COLUMNS}",
                    (
                        destination,
                        incident,
                        problem_id,
                        state.value,
                        started_at,
                        closed_at,
                        closed_by_at,
                        event_json,
                        fingerprint,
                        event_id,
                        now + lease,
                    ),
                )
                if rows:
                    conversation = _conversation(rows[0])
                    tx.count(
                        "INSERT INTO renderings (conversation_id, fingerprint, owner_event, claimed_until, "
                        "first_created) VALUES (%s, %s, %s, %s, %s)",
                        (conversation.id, fingerprint, event_id, now + lease, started_at),
                    )
                    return conversation, True
            existing = self.open_conversation(destination, incident)
            if existing is not None:
                return existing, False
            # Closed between our insert and our look: try again.

    def supersede(self, conversation_id: int, now: float) -> None:
        self.db.execute(
            "UPDATE conversations SET closed_at = %s, state = %s WHERE id = %s AND closed_at IS NULL",
            (now, State.SUPERSEDED.value, conversation_id),
        )

    # -- the root ---------------------------------------------------------------------------------------

    def take_root(self, conversation_id: int, event_id: str, now: float, lease: float) -> bool:
        """Claim posting the root of a conversation that has none: True when `event_id` holds the claim
        now (it held it already, or the holder's lease ran out)."""
        [changed] = self.db.execute_counts(
            (
                "UPDATE conversations SET root_claimed_by = %s, root_claimed_until = %s "
                "WHERE id = %s AND root_ref IS NULL "
                "AND (root_claimed_by = %s OR root_claimed_by IS NULL OR root_claimed_until < %s)",
                (event_id, now + lease, conversation_id, event_id, now),
            )
        )
        return changed == 1

    def record_root(self, conversation_id: int, event_id: str, channel: str, ref: str, now: float) -> bool:
        """The root `event_id` claimed is posted: keep its reference (the root's own notification is
        rendered with it). False when the claim was taken over meanwhile (the post stands; the other's
        will be the one the conversation uses)."""
        changed, _ = self.db.execute_counts(
            (
                "UPDATE conversations SET root_channel = %s, root_ref = %s, root_claimed_by = NULL, "
                "root_claimed_until = NULL WHERE id = %s AND root_claimed_by = %s AND root_ref IS NULL",
                (channel, ref, conversation_id, event_id),
            ),
            (
                "UPDATE renderings SET done_at = COALESCE(done_at, %s) WHERE conversation_id = %s AND fingerprint = "
                "(SELECT root_fingerprint FROM conversations WHERE id = %s)",
                (now, conversation_id, conversation_id),
            ),
        )
        return changed == 1

    def forget_root(self, conversation_id: int, gone_ref: str, event_id: str, now: float, lease: float) -> bool:
        """The root `gone_ref` was deleted in the chat: drop it and claim posting a new one (True), unless
        another event did so first (False)."""
        [changed] = self.db.execute_counts(
            (
                "UPDATE conversations SET root_ref = NULL, root_channel = NULL, root_claimed_by = %s, "
                "root_claimed_until = %s, root_generation = root_generation + 1 WHERE id = %s AND root_ref = %s",
                (event_id, now + lease, conversation_id, gone_ref),
            )
        )
        return changed == 1

    def release_root(self, conversation_id: int, event_id: str) -> None:
        """Posting the root failed: let the next event try at once rather than after the lease."""
        self.db.execute(
            "UPDATE conversations SET root_claimed_until = 0 WHERE id = %s AND root_claimed_by = %s "
            "AND root_ref IS NULL",
            (conversation_id, event_id),
        )

    # -- renderings and events ---------------------------------------------------------------------------

    def claim(
        self,
        conversation_id: int,
        fingerprint: str,
        event_id: str,
        *,
        created: float,
        window: float,
        now: float,
        lease: float,
    ) -> Claim:
        """Claim rendering `fingerprint` in a conversation for `event_id` (created at `created`). A
        rendering of the same fingerprint whose event was created more than `window` seconds earlier is
        another round of it (notification numbers start again at 1), not a copy: it is claimed anew."""
        with self.db.transaction() as tx:
            inserted = tx.rows(
                "INSERT INTO renderings (conversation_id, fingerprint, owner_event, claimed_until, first_created) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (conversation_id, fingerprint) DO NOTHING RETURNING 1",
                (conversation_id, fingerprint, event_id, now + lease, created),
            )
            if inserted:
                return Claim.MINE
            [(owner, until, first_created, done_at)] = tx.rows(
                "SELECT owner_event, claimed_until, first_created, done_at FROM renderings "
                f"WHERE conversation_id = %s AND fingerprint = %s{self.db.for_update}",
                (conversation_id, fingerprint),
            )
            another_round = created - first_created > window
            if done_at is not None and not another_round:
                return Claim.DONE
            if done_at is None and owner != event_id and until >= now:
                return Claim.BUSY
            tx.count(
                "UPDATE renderings SET owner_event = %s, claimed_until = %s, done_at = NULL, first_created = %s "
                "WHERE conversation_id = %s AND fingerprint = %s",
                (event_id, now + lease, created if another_round else first_created, conversation_id, fingerprint),
            )
            return Claim.MINE

    def claimed(self, conversation_id: int, fingerprint: str) -> float | None:
        """When the event that first claimed `fingerprint` in the conversation was created; None if none did."""
        rows = self.db.query(
            "SELECT first_created FROM renderings WHERE conversation_id = %s AND fingerprint = %s",
            (conversation_id, fingerprint),
        )
        return float(rows[0][0]) if rows else None

    def release(self, conversation_id: int, fingerprint: str, event_id: str) -> None:
        self.db.execute(
            "UPDATE renderings SET claimed_until = 0 WHERE conversation_id = %s AND fingerprint = %s "
            "AND owner_event = %s AND done_at IS NULL",
            (conversation_id, fingerprint, event_id),
        )

    def done(self, conversation_id: int, fingerprint: str | None, event_id: str, action: str, now: float) -> None:
        """`event_id` did `action`; with a fingerprint, that notification is rendered in the conversation."""
        with self.db.transaction() as tx:
            if fingerprint is not None:
                tx.count(
                    "UPDATE renderings SET done_at = %s WHERE conversation_id = %s AND fingerprint = %s",
                    (now, conversation_id, fingerprint),
                )
            _record_event(tx, event_id, conversation_id, action, now)

    def add_contact(self, conversation_id: int, contact: str, now: float) -> bool:
        """Note that `contact` was notified; True when the conversation did not know it yet."""
        [changed] = self.db.execute_counts(
            (
                "INSERT INTO notified (conversation_id, contact, seq) VALUES (%s, %s, %s) "
                "ON CONFLICT (conversation_id, contact) DO NOTHING",
                (conversation_id, contact, now),
            )
        )
        return changed == 1

    def shown(self, conversation_id: int, contacts: int) -> None:
        """The root, as just posted or edited, lists `contacts` contacts."""
        self.db.execute(
            "UPDATE conversations SET shown_contacts = CASE WHEN shown_contacts < %s THEN %s ELSE shown_contacts END "
            "WHERE id = %s",
            (contacts, contacts, conversation_id),
        )

    def take_contacts_edit(self, conversation_id: int) -> int | None:
        """The one edit that brings the root's list of contacts up to date: its version, to this caller
        only (None: it was taken; later contacts show at the next edit)."""
        rows = self.db.execute(
            "UPDATE conversations SET contacts_edited = 1, version = version + 1 "
            "WHERE id = %s AND contacts_edited = 0 RETURNING version",
            (conversation_id,),
        )
        return int(rows[0][0]) if rows else None

    def acknowledge(self, conversation_id: int, author: str, comment: str) -> int:
        """The root is to say who acknowledged and why; returns the version that shows it."""
        [(version,)] = self.db.execute(
            "UPDATE conversations SET ack_author = %s, ack_comment = %s, version = version + 1, "
            "state = CASE WHEN state = %s THEN %s ELSE state END WHERE id = %s RETURNING version",
            (author, comment, State.OPEN.value, State.ACKNOWLEDGED.value, conversation_id),
        )
        return int(version)

    def recover(self, conversation_id: int, recovery_json: str, recovered_at: float, now: float) -> int:
        """The incident recovered: the conversation closes (a later PROBLEM starts a new one); returns the
        version that shows it."""
        [(version,)] = self.db.execute(
            "UPDATE conversations SET state = %s, recovery_event = %s, version = version + 1, "
            "closed_at = COALESCE(closed_at, %s), closed_by_at = %s WHERE id = %s RETURNING version",
            (State.RECOVERED.value, recovery_json, now, recovered_at, conversation_id),
        )
        return int(version)

    def forget_old(self, before: float) -> int:
        """Drop what no event can refer to any more: closed conversations and event ids older than
        `before`, and webhook dedupe rows past their window."""
        with self.db.transaction() as tx:
            old = "SELECT id FROM conversations WHERE closed_at IS NOT NULL AND closed_at < %s"
            tx.count(f"DELETE FROM renderings WHERE conversation_id IN ({old})", (before,))
            tx.count(f"DELETE FROM notified WHERE conversation_id IN ({old})", (before,))
            tx.count(f"DELETE FROM digest_members WHERE conversation_id IN ({old})", (before,))
            done = "SELECT id FROM digests WHERE posted_at IS NOT NULL AND posted_at < %s"
            tx.count(f"DELETE FROM digest_members WHERE digest_id IN ({done})", (before,))
            tx.count(f"DELETE FROM digest_items WHERE digest_id IN ({done})", (before,))
            tx.count(f"DELETE FROM digest_parts WHERE digest_id IN ({done})", (before,))
            tx.count("DELETE FROM digests WHERE posted_at IS NOT NULL AND posted_at < %s", (before,))
            tx.count("DELETE FROM events WHERE at < %s", (before,))
            dropped = tx.count("DELETE FROM conversations WHERE closed_at IS NOT NULL AND closed_at < %s", (before,))
            tx.count("DELETE FROM webhook_posts WHERE first_at < %s", (before,))
        return dropped

    # -- webhook mode -----------------------------------------------------------------------------------

    def webhook_claim(
        self,
        destination: str,
        incident: str,
        fingerprint: str,
        *,
        event_id: str,
        contact: str,
        created: float,
        now: float,
        lease: float,
        window: float,
    ) -> WebhookDecision:
        """Whether to post this copy of a notification (created at `created`) to a webhook destination
        (see folding.py). Copies count as one when their events were created within `window` seconds."""
        key = (destination, incident, fingerprint)
        with self.db.transaction() as tx:
            inserted = tx.rows(
                "INSERT INTO webhook_posts (destination, incident, fingerprint, owner_event, contacts, "
                "claimed_until, first_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (destination, incident, fingerprint) DO NOTHING RETURNING 1",
                (*key, event_id, dump([contact]), now + lease, created),
            )
            if inserted:
                return WebhookDecision.POST
            [(owner, contacts_json, until, posted_at, first_at)] = tx.rows(
                "SELECT owner_event, contacts, claimed_until, posted_at, first_at FROM webhook_posts "
                f"WHERE destination = %s AND incident = %s AND fingerprint = %s{self.db.for_update}",
                key,
            )
            served = set(json.loads(contacts_json))
            if owner == event_id:
                if posted_at is not None:
                    return WebhookDecision.DONE
                tx.count(
                    "UPDATE webhook_posts SET claimed_until = %s "
                    "WHERE destination = %s AND incident = %s AND fingerprint = %s",
                    (now + lease, *key),
                )
                return WebhookDecision.POST
            stale = created - first_at > window
            if stale or (posted_at is None and until < now):
                # A new round of the same notification, or a copy whose worker died before posting.
                tx.count(
                    "UPDATE webhook_posts SET owner_event = %s, contacts = %s, claimed_until = %s, "
                    "posted_at = NULL, first_at = %s WHERE destination = %s AND incident = %s AND fingerprint = %s",
                    (
                        event_id,
                        dump([contact] if stale else sorted(served | {contact})),
                        now + lease,
                        created if stale else first_at,
                        *key,
                    ),
                )
                return WebhookDecision.POST
            if contact in served:
                return WebhookDecision.AGAIN
            if posted_at is None:
                return WebhookDecision.WAIT
            tx.count(
                "UPDATE webhook_posts SET contacts = %s WHERE destination = %s AND incident = %s AND fingerprint = %s",
                (dump(sorted(served | {contact})), *key),
            )
            return WebhookDecision.FOLD

    def webhook_posted(self, destination: str, incident: str, fingerprint: str, event_id: str, now: float) -> None:
        self.db.execute(
            "UPDATE webhook_posts SET posted_at = %s WHERE destination = %s AND incident = %s "
            "AND fingerprint = %s AND owner_event = %s",
            (now, destination, incident, fingerprint, event_id),
        )

    def webhook_release(self, destination: str, incident: str, fingerprint: str, event_id: str) -> None:
        self.db.execute(
            "UPDATE webhook_posts SET claimed_until = 0 WHERE destination = %s AND incident = %s "
            "AND fingerprint = %s AND owner_event = %s AND posted_at IS NULL",
            (destination, incident, fingerprint, event_id),
        )


def _record_event(tx: Transaction, event_id: str, conversation_id: int | None, action: str, now: float) -> None:
    tx.count(
        "INSERT INTO events (event_id, conversation_id, action, at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (event_id) DO NOTHING",
        (event_id, conversation_id, action, now),
    )


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
