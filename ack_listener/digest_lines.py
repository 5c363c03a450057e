"""The lines of a digest part, for its "Acknowledge all N" button: read from the conversations store
(`conversations.store`, where the workers keep the digests: workers/conversations/store.py
`digest_items`), opened on the first digest click. Read only: the listener never writes there."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from state.db import Database, open_database


class DigestUnavailable(Exception):
    """The store could not be read; the message names the error's kind, never a password."""


@dataclass(frozen=True)
class DigestLine:
    position: int
    incident: str
    event_id: str  # the line's lead event: the one shown, whose problem the core is asked to acknowledge
    event_json: str


class DigestLines:
    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Database | None = None
        self._lock = threading.Lock()

    def part(self, digest_id: int, part: int) -> list[DigestLine]:
        try:
            with self._lock:
                if self._db is None:
                    self._db = open_database(
                        self.url, (), setting="conversations.store", lock_name="alertq.conversations"
                    )
                db = self._db
            rows = db.query(
                "SELECT position, incident, event_id, event_json FROM digest_items "
                "WHERE digest_id = %s AND part = %s AND lead = 1 ORDER BY position",
                (digest_id, part),
            )
        except Exception as exc:
            raise DigestUnavailable(type(exc).__name__) from None
        return [DigestLine(int(p), str(i), str(e), str(j)) for p, i, e, j in rows]
