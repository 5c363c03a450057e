"""Turn parsed flags into `alertq.alert/1` events, one per channel (standard library only).

`schemas.alert.AlertEvent` is the reader's model of the same JSON; the tests validate what this builds.

Only cheap imports here (`re` comes with `json` anyway): `uuid`, `socket` and `typing` would cost the
enqueue command more than all its work (see tests/perf), so a UUID4 is made from os.urandom and the
host name comes from os.uname().
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from producer.flags import Flags, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ALERT_SCHEMA = "alertq.alert/1"
TEXT_LIMIT = 64 * 1024
STDIN_LIMIT = 16 * 1024 * 1024
CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

HOST_STATES = {"UP": 0, "DOWN": 1, "UNREACHABLE": 2}
SERVICE_STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def clean_text(raw: str | bytes | None) -> str:
    """Plugin output as valid text: invalid UTF-8 replaced, cut to 64 KiB (UTF-8 bytes) with a marker."""
    if raw is None:
        return ""
    # argv arrives as str with undecodable bytes smuggled in as surrogates; get the bytes back first.
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    text = data.decode("utf-8", "replace")
    encoded = text.encode()
    if len(encoded) <= TEXT_LIMIT:
        return text
    marker = f"\n[alertq: cut at 64 KiB, {len(encoded) - TEXT_LIMIT} more bytes dropped]"
    cut = TEXT_LIMIT - len(marker.encode())
    # Step back to a character boundary: the cut must not split a character.
    while encoded[cut] & 0xC0 == 0x80:
        cut -= 1
    return encoded[:cut].decode() + marker


def _state(flag: str, value: str, names: dict[str, int]) -> int:
    text = value.strip().upper()
    if text in names:
        return names[text]
    if text.isdigit() and int(text) in names.values():
        return int(text)
    allowed = ", ".join(f"{n} {s}" for s, n in names.items())
    raise UsageError(f"{flag}: {value[:40]!r} is not a state ({allowed})")


def _timestamp(value: str | None) -> str:
    if not value:
        return datetime.now(UTC).isoformat()
    try:
        return datetime.fromtimestamp(float(value), UTC).isoformat()
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--timestamp: {value[:40]!r} is neither epoch seconds nor ISO-8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def _int_or_none(flag: str, value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{flag}: {value[:40]!r} is not a whole number") from None


def _nonempty(value: str | None) -> str | None:
    return value if value not in (None, "") else None


def build_events(flags: Flags, stdin: Any = None) -> list[dict[str, Any]]:
    """Validate the invocation and return one event per `--channel`. Raises UsageError."""
    v = flags.get
    if not flags.channels:
        raise UsageError("--channel is required (mattermost, slack, email or webhook)")
    for channel in flags.channels:
        if not CHANNEL_NAME.match(channel):
            raise UsageError(f"--channel: {channel[:40]!r} is not a channel name (lowercase letters, digits, - _)")
    kind_raw = v("type")
    if kind_raw is None:
        raise UsageError("--type is required (Host or Service)")
    kind = kind_raw.strip().lower()
    if kind not in ("host", "service"):
        raise UsageError(f"--type: {kind_raw[:40]!r} is neither Host nor Service")
    notification_type = (v("notificationtype") or "").strip()
    if not notification_type:
        raise UsageError("--notificationtype is required ($NOTIFICATIONTYPE$)")

    host_id = _nonempty(v("hostuuid")) or _nonempty(v("hostname"))
    if host_id is None:
        raise UsageError("--hostuuid (or --hostname) is required")
    service: dict[str, str] | None = None
    if kind == "service":
        service_id = _nonempty(v("serviceuuid")) or _nonempty(v("servicedesc"))
        if service_id is None:
            raise UsageError("--serviceuuid (or --servicedesc) is required for --type Service")
        service = {
            "id": service_id,
            "name": service_id,
            "display_name": clean_text(_nonempty(v("service_display_name")) or service_id),
        }
        state_flag, state_value = ("--state", v("state")) if v("state") else ("--servicestate", v("servicestate"))
        names = SERVICE_STATES
    else:
        state_flag, state_value = ("--state", v("state")) if v("state") else ("--hoststate", v("hoststate"))
        names = HOST_STATES
    if not state_value:
        raise UsageError(f"--state is required ({'$SERVICESTATEID$' if service else '$HOSTSTATEID$'})")
    state = _state(state_flag, state_value, names)

    ack = None
    if _nonempty(v("ackauthor")) or _nonempty(v("ackcomment")):
        ack = {"author": clean_text(v("ackauthor")), "comment": clean_text(v("ackcomment"))}
    contact = None
    if any(_nonempty(v(k)) for k in ("contact", "contact_email", "contact_pager")):
        contact = {
            k: _nonempty(v(f)) for k, f in (("name", "contact"), ("email", "contact_email"), ("pager", "contact_pager"))
        }
    policy = _nonempty(v("escalation_policy"))

    common = {
        "schema": ALERT_SCHEMA,
        "created_at": _timestamp(_nonempty(v("timestamp"))),
        "kind": kind,
        "notification_type": notification_type,
        "host": {
            "id": host_id,
            "name": host_id,
            "display_name": clean_text(_nonempty(v("host_display_name")) or host_id),
            "address": _nonempty(v("hostaddress")),
        },
        "service": service,
        "state": state,
        "output": _read_text(v("output"), stdin),
        "long_output": _read_text(v("long_output"), stdin),
        "ack": ack,
        "notification_number": _int_or_none("--notification-number", v("notification_number")),
        "contact": contact,
        "escalation": {"policy": policy, "step": 0} if policy else None,
        "source": {"producer_host": os.uname().nodename, "core": v("core") or "naemon"},
    }
    return [{"event_id": uuid4(), "channel": channel, **common} for channel in flags.channels]


def uuid4() -> str:
    """A random (version 4) UUID as text, like str(uuid.uuid4())."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _read_text(value: str | None, stdin: Any) -> str:
    if value == "-" and stdin is not None:
        return clean_text(stdin.read(STDIN_LIMIT))
    return clean_text(value)
