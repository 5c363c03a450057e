"""The record of used buttons, in the state store every listener replica shares.

Before it publishes, the listener claims the button's problem (`claim`, a unique key taken in one
statement); a second click, on this replica or another, finds the claim and is answered "already
acknowledged by …" without publishing again. The key is the core's problem id when the button
carries one (every button of that problem, whichever post or channel, is one claim), else the event
the button was sent with. A claim whose ack could not be queued or forwarded is released, so the
next click may try again. Claims are dropped once every button that could reach them has expired.

Each action claims apart (the key names it; an Acknowledge key is what it was before other actions).
Only an Acknowledge the core confirmed keeps its claim: Snooze, Recheck now and Unacknowledge hold
theirs while in flight (a double click sends one command) and release it once the forwarder has its
answer; a confirmed Unacknowledge clears the problem's Acknowledge claim, so it can be acknowledged
again.

The store is `state_store` (state/store.py): a SQLite file by default, PostgreSQL for
listeners on several hosts. It is opened on first use and reopened after an error (a restarted
PostgreSQL), so a listener never stays broken.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from datetime import UTC, datetime

import structlog

from state.store import AckClaim, IncidentStore, open_store

log = structlog.get_logger("alertq.ack_listener")

FORGET_EVERY = 60.0  # seconds between two sweeps of expired claims


class StoreUnavailable(Exception):
    """The state store could not be read or written; the message says why, never a password."""


def claim_key(
    host_id: str, service_id: str | None, problem_id: str | None, event_id: str, action: str = "acknowledge"
) -> str:
    subject = ["problem", problem_id] if problem_id is not None else ["event", event_id]
    named = [] if action == "acknowledge" else [action]  # Acknowledge keys are those of older listeners
    return hashlib.sha256(json.dumps([host_id, service_id, *subject, *named]).encode()).hexdigest()


class UsedButtons:
    def __init__(self, url: str) -> None:
        self._url = url
        self._store: IncidentStore | None = None
        self._lock = threading.Lock()
        self._forgotten_at = 0.0

    def claim(self, claim: AckClaim, expires_at: float) -> AckClaim:
        """The claim that holds `claim.key`: `claim` itself when this call took it."""
        store = self._open()
        try:
            held = store.claim_ack(claim, datetime.fromtimestamp(expires_at, UTC))
            if time.monotonic() - self._forgotten_at > FORGET_EVERY:
                self._forgotten_at = time.monotonic()
                store.forget_expired_acks(datetime.now(UTC))
        except Exception as exc:
            raise self._failed(store, exc) from None
        return held

    def release(self, key: str, ack_id: str) -> None:
        """Best effort: a claim left behind only makes the next click say "already acknowledged"."""
        try:
            store = self._open()
            try:
                store.release_ack(key, ack_id)
            except Exception as exc:
                raise self._failed(store, exc) from None
        except StoreUnavailable as exc:
            log.warning("ack_listener.claim_not_released", ack_id=ack_id, error=str(exc))

    def clear(self, key: str) -> None:
        """Best effort: drop the claim on `key` whoever holds it."""
        try:
            store = self._open()
            try:
                store.clear_ack(key)
            except Exception as exc:
                raise self._failed(store, exc) from None
        except StoreUnavailable as exc:
            log.warning("ack_listener.claim_not_cleared", error=str(exc))

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close_store()
                self._store = None

    def _open(self) -> IncidentStore:
        with self._lock:
            if self._store is None:
                try:
                    self._store = open_store(self._url)
                except Exception as exc:
                    log.warning("ack_listener.state_store_unavailable", error=f"{type(exc).__name__}: {exc}")
                    raise StoreUnavailable(f"cannot open the state store ({type(exc).__name__})") from None
            return self._store

    def _failed(self, store: IncidentStore, exc: Exception) -> StoreUnavailable:
        """Forget a store that failed, so the next call opens it afresh."""
        log.warning("ack_listener.state_store_failed", store=store.describe(), error=f"{type(exc).__name__}: {exc}")
        with self._lock:
            if self._store is store:
                self._store = None
        with contextlib.suppress(Exception):  # closing a broken connection may fail too; it is dropped anyway
            store.close_store()
        return StoreUnavailable(f"the state store failed ({type(exc).__name__})")
