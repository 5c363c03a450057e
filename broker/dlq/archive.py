"""The dead-letter file of `alertq dlq export` / `import`: JSON lines, one message per line.

    {"format": "alertq.dead-letter/1", "routing_key": "notify.slack", "properties": {...},
     "headers": {...}, "body_b64": "...", "event_id": "...", "reason": "..."}

The body is base64 so any bytes survive; properties are AMQP's basic properties by pika's names;
header values keep their AMQP types through tagged objects where JSON has none: bytes
`{"$bytes": b64}`, timestamps `{"$timestamp": epoch}`, decimals `{"$decimal": "1.5"}`, and a table
that would look like one of those `{"$table": {...}}`. `event_id` and `reason` are for people and
grep; import ignores them. `x-delivery-count` (the dead queue's own count) is not exported.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pika

from broker.dlq.letter import DeadLetter

FORMAT = "alertq.dead-letter/1"
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)
_TAGS = ("$bytes", "$timestamp", "$decimal", "$table")


class ArchiveError(ValueError):
    pass


def dumps(letter: DeadLetter) -> str:
    props = {n: getattr(letter.properties, n) for n in PROPERTY_NAMES if getattr(letter.properties, n) is not None}
    record = {
        "format": FORMAT,
        "routing_key": letter.routing_key,
        "properties": props,
        "headers": {k: encode_value(v) for k, v in letter.headers.items()},
        "body_b64": base64.b64encode(letter.body).decode("ascii"),
        "event_id": letter.event_id,
        "reason": letter.reason,
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class Archived:
    """One line of the file, ready to publish back to the dead letters."""

    def __init__(self, routing_key: str, properties: pika.BasicProperties, body: bytes) -> None:
        self.routing_key = routing_key
        self.properties = properties
        self.body = body


def loads(line: str, line_number: int = 0) -> Archived:
    where = f"line {line_number}: " if line_number else ""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ArchiveError(f"{where}not JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ArchiveError(f"{where}not an {FORMAT} record")
    try:
        routing_key = record["routing_key"]
        body = base64.b64decode(record["body_b64"], validate=True)
        props = record.get("properties", {})
        unknown = set(props) - set(PROPERTY_NAMES)
        if unknown:
            raise ArchiveError(f"{where}unknown properties {sorted(unknown)}")
        headers = {str(k): decode_value(v) for k, v in record.get("headers", {}).items()}
        properties = pika.BasicProperties(**props, headers=headers or None)
    except ArchiveError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArchiveError(f"{where}malformed record ({type(exc).__name__}: {exc})") from None
    if not isinstance(routing_key, str):
        raise ArchiveError(f"{where}routing_key is not a string")
    return Archived(routing_key, properties, body)


def encode_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"$timestamp": int(aware.timestamp())}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        table = {str(k): encode_value(v) for k, v in value.items()}
        return {"$table": table} if len(table) == 1 and next(iter(table)) in _TAGS else table
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            tag, inner = next(iter(value.items()))
            if tag == "$bytes":
                return base64.b64decode(inner, validate=True)
            if tag == "$timestamp":
                return datetime.fromtimestamp(int(inner), UTC)
            if tag == "$decimal":
                return Decimal(inner)
            if tag == "$table":
                return {str(k): decode_value(v) for k, v in inner.items()}
        return {str(k): decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value
