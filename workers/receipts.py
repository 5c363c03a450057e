"""Receipts: a worker tells `alertq test` what became of a test notification.

`alertq test` puts header `alertq-report-to` on its event, naming an exclusive, auto-delete queue of
its own (`alertq.receipts.…`; any other name is ignored, so a header cannot make a worker write into
alertq's real queues). After the worker has settled an outcome for such a message (delivered, a retry
scheduled, dead-lettered) it publishes one small JSON receipt there through the default exchange:
unconfirmed and not mandatory, so it never waits on the broker and never fails a delivery; if the
queue is gone (the command gave up), the broker drops the receipt.

A receipt has a fixed set of fields, taken from what the worker also logs: the target is the
channel's opaque key (a hash, never the URL), the error the reason a channel gives (channels keep
URLs and keys out of it); on top of that anything URL-shaped in the error is masked. No header, body,
or setting is ever copied into it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from broker import names

Outcome = Literal["delivered", "retrying", "dead"]

ERROR_MAX = 300
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


@dataclass(frozen=True)
class Receipt:
    event_id: str
    channel: str
    outcome: Outcome
    attempt: int
    target: str | None = None
    seconds: float | None = None  # the delivery attempt's duration
    error: str | None = None  # why it was retried or dead-lettered
    dead_reason: str | None = None  # permanent, max-attempts, expired, invalid, …
    retry_in: int | None = None  # seconds until the next attempt

    def encode(self) -> bytes:
        fields = asdict(self)
        if self.error is not None:
            fields["error"] = _URL.sub("<url>", self.error)[:ERROR_MAX]
        return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()

    @classmethod
    def decode(cls, body: bytes) -> Receipt:
        data: dict[str, Any] = json.loads(body)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def report_to(headers: dict[str, Any] | None) -> str | None:
    """The receipt queue a message asks for, or None (no header, or not a receipt queue's name)."""
    value = (headers or {}).get(names.HEADER_REPORT_TO)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str) and value.startswith(names.RECEIPT_QUEUE_PREFIX) and len(value) <= 200:
        return value
    return None
