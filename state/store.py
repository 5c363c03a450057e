"""The state store: SQLite on one host, PostgreSQL when several hosts share it.

The escalator keeps its incidents here.

An incident is one unacknowledged problem (key `host[/service]`) under one policy. At most one incident
per key is open at a time: the database enforces it (a unique index over open incidents), so two
escalators that see the same PROBLEM at once open one incident. `record_step` is the claim to send a
step: it succeeds once per (incident, step) and only while the incident is open, so a timer the broker
delivers twice, or one that arrives after an acknowledgement, sends nothing. A claim is marked sent
(`mark_sent`) once the step's notifications are confirmed by the broker; a claim left unsent by a crash
is found by `step_unsent`, so the redelivered timer sends it after all (never lost, at most repeated
when the crash fell between the broker's confirm and `mark_sent`).

The ack listener keeps its claims here too (`ack_claims`, see `claim_ack`): one row per problem whose
Acknowledge button was clicked, so listener replicas sharing the store forward one click of it.

`open_store(url)` picks the backend: `sqlite:///var/alertq.db` (relative), `sqlite:////abs/path.db`,
`postgresql://user@host/db` (`?schema=NAME` keeps the tables in a schema of their own).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from state.db import Database, PostgresDatabase, SqliteDatabase, postgres_dsn
from state.db import sqlite_path as sqlite_path  # alertq status reads the SQLite file's path

# The columns an `Incident` is read from, in `_incident`'s order.
INCIDENT_COLUMNS = "id, key, policy, opened_at, next_step, due_at, closed_at, close_reason, event"


@dataclass(frozen=True)
class AckClaim:
    """Who clicked a problem's button first (`IncidentStore.claim_ack`)."""

    key: str
    ack_id: str
    chat_user: str
    source: str
    claimed_at: datetime


@dataclass(frozen=True)
class Incident:
    id: int
    key: str
    policy: str
    opened_at: datetime
    next_step: int  # 1-based number of the step to fire next
    due_at: datetime | None  # when that step is due; None: no step left
    closed_at: datetime | None
    close_reason: str | None
    event: str = ""  # the PROBLEM event (alertq.alert/1 JSON) that opened it: what each step retells

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class IncidentStore(ABC):
    """The escalator's state. Times are aware datetimes; they are stored as UTC epoch seconds."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; its rows (RETURNING included)."""

    @abstractmethod
    def _execute_counts(self, *statements: tuple[str, Sequence[Any]]) -> list[int]:
        """Run statements in one transaction; the number of rows each changed."""

    @abstractmethod
    def close_store(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Which store this is, for logs: never a password."""

    def open(
        self, key: str, policy: str, due_at: datetime | None, now: datetime, event: str = ""
    ) -> tuple[Incident, bool]:
        """The open incident for `key`, opened now if there is none; True when this call opened it."""
        while True:
            rows = self._execute(
                "INSERT INTO incidents (key, policy, opened_at, next_step, due_at, event) "
                "VALUES (%s, %s, %s, 1, %s, %s) "
                "ON CONFLICT (key) WHERE closed_at IS NULL DO NOTHING "
                "RETURNING id, key, policy, opened_at, next_step, due_at, closed_at, close_reason, event",
                (key, policy, _epoch(now), _epoch(due_at), event),
            )
            if rows:
                return _incident(rows[0]), True
            existing = self.open_for(key)
            if existing is not None:
                return existing, False
            # Closed between our insert and our look: try again.

    def get(self, incident_id: int) -> Incident | None:
        found = self._incidents("id = %s", (incident_id,))
        return found[0] if found else None

    def open_for(self, key: str) -> Incident | None:
        found = self._incidents("key = %s AND closed_at IS NULL", (key,))
        return found[0] if found else None

    def _incidents(self, condition: str, params: Sequence[Any] = ()) -> list[Incident]:
        """Incidents WHERE `condition` (a constant of this class; values only ever as `params`)."""
        rows = self._execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {condition}", params)  # noqa: S608
        return [_incident(row) for row in rows]

    def close(self, incident_id: int, reason: str, now: datetime) -> bool:
        """Close an open incident; False when it was closed already (or never existed)."""
        [changed] = self._execute_counts(
            (
                "UPDATE incidents SET closed_at = %s, close_reason = %s, due_at = NULL "
                "WHERE id = %s AND closed_at IS NULL",
                (_epoch(now), reason, incident_id),
            )
        )
        return changed == 1

    def record_step(self, incident_id: int, step: int, next_due: datetime | None, now: datetime) -> bool:
        """Claim step `step` of an open incident: True once, the first time; then the next step is due at
        `next_due` (None: none left). False for a closed incident or a step already recorded."""
        # One transaction, so a crash cannot leave a claimed step with the incident not advanced. When the
        # claim finds the step recorded already, the update finds next_step past it and changes nothing.
        claimed, _ = self._execute_counts(
            (
                "INSERT INTO fired_steps (incident_id, step, fired_at) "
                "SELECT id, %s, %s FROM incidents WHERE id = %s AND closed_at IS NULL "
                "ON CONFLICT (incident_id, step) DO NOTHING",
                (step, _epoch(now), incident_id),
            ),
            (
                "UPDATE incidents SET next_step = %s, due_at = %s "
                "WHERE id = %s AND closed_at IS NULL AND next_step <= %s",
                (step + 1, _epoch(next_due), incident_id, step),
            ),
        )
        return claimed == 1

    def step_unsent(self, incident_id: int, step: int) -> bool:
        """True when `step` of an open incident was claimed but never marked sent (a crash in between)."""
        rows = self._execute(
            "SELECT 1 FROM fired_steps JOIN incidents ON incidents.id = fired_steps.incident_id "
            "WHERE incident_id = %s AND step = %s AND sent_at IS NULL AND closed_at IS NULL",
            (incident_id, step),
        )
        return bool(rows)

    def mark_sent(self, incident_id: int, step: int, now: datetime) -> None:
        self._execute(
            "UPDATE fired_steps SET sent_at = %s WHERE incident_id = %s AND step = %s",
            (_epoch(now), incident_id, step),
        )

    def overdue(self, before: datetime, limit: int = 1000) -> list[Incident]:
        """Open incidents whose next step was due before `before`: their timer is late or lost."""
        return self._incidents("closed_at IS NULL AND due_at < %s ORDER BY due_at LIMIT %s", (_epoch(before), limit))

    def fired_at(self, incident_id: int) -> dict[int, datetime]:
        """When each claimed step of an incident was claimed."""
        rows = self._execute(
            "SELECT step, fired_at FROM fired_steps WHERE incident_id = %s ORDER BY step", (incident_id,)
        )
        return {int(step): datetime.fromtimestamp(at, UTC) for step, at in rows}

    def fired_steps(self, incident_id: int) -> list[int]:
        rows = self._execute("SELECT step FROM fired_steps WHERE incident_id = %s ORDER BY step", (incident_id,))
        return [int(row[0]) for row in rows]

    def list_open(self) -> list[Incident]:
        """Open incidents, the next due first (those with no step left last)."""
        return self._incidents("closed_at IS NULL ORDER BY CASE WHEN due_at IS NULL THEN 1 ELSE 0 END, due_at, id")

    # -- the ack listener's claims -------------------------------------------------------------------

    def claim_ack(self, claim: AckClaim, expires_at: datetime) -> AckClaim:
        """Record `claim` unless its key is claimed already; the claim that holds the key either way
        (`claim` itself when this call took it). The key is kept until `expires_at`, extended by a later
        claim attempt of a longer-lived button."""
        # One statement: two listeners claiming at once are serialised on the primary key; the loser's
        # DO UPDATE returns the winner's row (and only ever extends the expiry).
        [(key, ack_id, chat_user, source, claimed_at)] = self._execute(
            "INSERT INTO ack_claims (key, ack_id, chat_user, source, claimed_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET expires_at = CASE WHEN excluded.expires_at > ack_claims.expires_at "
            "THEN excluded.expires_at ELSE ack_claims.expires_at END "
            "RETURNING key, ack_id, chat_user, source, claimed_at",
            (claim.key, claim.ack_id, claim.chat_user, claim.source, _epoch(claim.claimed_at), _epoch(expires_at)),
        )
        claimed = _time(claimed_at)
        assert claimed is not None
        return AckClaim(key, ack_id, chat_user, source, claimed)

    def release_ack(self, key: str, ack_id: str) -> bool:
        """Give up a claim this ack took (its publish or its forward failed); True if there was one."""
        [changed] = self._execute_counts(("DELETE FROM ack_claims WHERE key = %s AND ack_id = %s", (key, ack_id)))
        return changed == 1

    def clear_ack(self, key: str) -> bool:
        """Drop the claim on `key` whoever holds it (the core's acknowledgement was removed); True if there was one."""
        [changed] = self._execute_counts(("DELETE FROM ack_claims WHERE key = %s", (key,)))
        return changed == 1

    def forget_expired_acks(self, now: datetime) -> int:
        """Drop claims whose buttons have all expired: no valid token can reach them any more."""
        [changed] = self._execute_counts(("DELETE FROM ack_claims WHERE expires_at < %s", (_epoch(now),)))
        return changed


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS incidents (
        id {id_type} PRIMARY KEY,
        key TEXT NOT NULL,
        policy TEXT NOT NULL,
        opened_at DOUBLE PRECISION NOT NULL,
        next_step INTEGER NOT NULL,
        due_at DOUBLE PRECISION,
        closed_at DOUBLE PRECISION,
        close_reason TEXT,
        event TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS incidents_open_key ON incidents (key) WHERE closed_at IS NULL",
    "CREATE INDEX IF NOT EXISTS incidents_open_due ON incidents (due_at) WHERE closed_at IS NULL",
    """CREATE TABLE IF NOT EXISTS fired_steps (
        incident_id BIGINT NOT NULL REFERENCES incidents (id),
        step INTEGER NOT NULL,
        fired_at DOUBLE PRECISION NOT NULL,
        sent_at DOUBLE PRECISION,
        PRIMARY KEY (incident_id, step)
    )""",
    """CREATE TABLE IF NOT EXISTS ack_claims (
        key TEXT PRIMARY KEY,
        ack_id TEXT NOT NULL,
        chat_user TEXT NOT NULL,
        source TEXT NOT NULL,
        claimed_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ack_claims_expiry ON ack_claims (expires_at)",
)


class _DatabaseIncidentStore(IncidentStore):
    """The store on one of state/db.py's databases (the same code as the conversations' store)."""

    _db: Database

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params)

    def _execute_counts(self, *statements: tuple[str, Sequence[Any]]) -> list[int]:
        return self._db.execute_counts(*statements)

    def close_store(self) -> None:
        self._db.close()

    def describe(self) -> str:
        return self._db.describe()


class SqliteIncidentStore(_DatabaseIncidentStore):
    """One file, WAL mode: several processes on one host may share it; writers wait for each other."""

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self._db = SqliteDatabase(path, _SCHEMA, busy_timeout)


class PostgresIncidentStore(_DatabaseIncidentStore):
    """PostgreSQL (psycopg 3): one database serves the escalators of several hosts."""

    def __init__(self, dsn: str, schema: str | None = None) -> None:
        self._db = PostgresDatabase(dsn, _SCHEMA, pg_schema=schema, lock_name="alertq.incident_store")


def open_store(url: str) -> IncidentStore:
    """The store a `state_store` URL names."""
    path = sqlite_path(url)
    if path is not None:
        return SqliteIncidentStore(path)
    return PostgresIncidentStore(*postgres_dsn(url))


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the incident store needs aware times")
    return moment.timestamp()


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _incident(row: tuple[Any, ...]) -> Incident:
    id_, key, policy, opened_at, next_step, due_at, closed_at, close_reason, event = row
    opened = _time(opened_at)
    assert opened is not None
    return Incident(int(id_), key, policy, opened, int(next_step), _time(due_at), _time(closed_at), close_reason, event)
