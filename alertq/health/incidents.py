"""Open incidents, for `alertq status`: read from the escalator's state store.

None when escalation is not configured (no `routing_file`): status shows "n/a (no routing_file)" and
no perfdata, never a made-up zero. A SQLite store that does not exist yet holds no incident; status
does not create it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from schemas.settings import Settings, mask_url


@dataclass(frozen=True)
class OpenIncident:
    id: int
    name: str  # host[/service] as people know them (display names from the PROBLEM that opened it)
    policy: str
    opened_at: datetime
    next_step: int | None  # None: every step sent, waiting for an acknowledgement or recovery
    due_at: datetime | None


class IncidentsUnavailable(Exception):
    """The store named by `state_store` cannot be read; the message is one line without secrets."""


def open_incidents(settings: Settings) -> list[OpenIncident] | None:
    if settings.routing_file is None:
        return None
    from state.store import open_store, sqlite_path

    try:
        path = sqlite_path(settings.state_store)
        if path is not None and not path.exists():
            return []
        store = open_store(settings.state_store)
        try:
            rows = store.list_open()
        finally:
            store.close_store()
    except Exception as exc:  # sqlite3 / psycopg errors: say which store, never its password
        raise IncidentsUnavailable(
            f"state_store {mask_url(settings.state_store)}: {' '.join(str(exc).split())}"
        ) from None
    return [
        OpenIncident(
            row.id,
            _name(row.event, row.key),
            row.policy,
            row.opened_at,
            row.next_step if row.due_at is not None else None,
            row.due_at,
        )
        for row in rows
    ]


def _name(event: str, key: str) -> str:
    try:
        data = json.loads(event)
        host = data["host"]["display_name"] or data["host"]["name"]
        service = data.get("service")
        return f"{host}/{service['display_name'] or service['name']}" if service else str(host)
    except (ValueError, KeyError, TypeError):
        return key
