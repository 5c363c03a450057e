"""Turn parsed flags into `alertq.alert/1` events, one per channel (standard library only).

`schemas.alert.AlertEvent` is the reader's model of the same JSON; the tests validate what this builds.

Only modules every Python has loaded at start-up (`codecs`, `os`) or that are built in (`time`):
`re`, `datetime`, `uuid`, `socket` and `typing` would each cost the enqueue command a good part of all
its work (see tests/perf), so a UUID4 is made from os.urandom, the host name comes from os.uname(), the
channel name is checked without a regular expression and times are written with time.gmtime. `datetime`
is imported only for a --timestamp that is ISO-8601 or has a fraction of a second.
"""

from __future__ import annotations

import codecs
import os
import time

from producer.flags import Flags, UsageError, raw_bytes
from producer.flags import text as valid_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ALERT_SCHEMA = "alertq.alert/1"
TEXT_LIMIT = 64 * 1024
# Standard input beyond what can be kept is read and counted, so the cut marker can say how much was
# dropped, up to this much; past it the marker says "at least" and the rest is not read (a pipe that
# never ends must not keep the alert from being stored).
STDIN_COUNT_LIMIT = 1024 * 1024 * 1024
STDIN_CHUNK = 1024 * 1024
CUT_MARKER = "\n[alertq: cut at 64 KiB, {} more bytes dropped]"
# A channel name: a lowercase letter or digit, then up to 62 more of those or - and _.
CHANNEL_FIRST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
CHANNEL_CHARS = CHANNEL_FIRST_CHARS | frozenset("-_")
CHANNEL_NAME_MAX = 63

HOST_STATES = {"UP": 0, "DOWN": 1, "UNREACHABLE": 2}
SERVICE_STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
# A state value that is none of these does not cost the alert: it is sent as the state the core itself
# gives an unknown check result (a service UNKNOWN; a host check's UNKNOWN counts as DOWN), and in a
# RECOVERY, which the core sends only for UP or OK, as that.
HOST_STATE_FALLBACK = HOST_STATES["DOWN"]
SERVICE_STATE_FALLBACK = SERVICE_STATES["UNKNOWN"]
RECOVERED_STATE = 0
NOTIFICATION_NUMBER_MAX = 2**31 - 1
PROBLEM_ID_MAX = 64
PROBLEM_ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._:-")

# The time window a --timestamp must fall in; outside it (or not a time at all) the time of receipt is used.
EARLIEST_TIMESTAMP = 946684800.0  # 2000-01-01T00:00:00Z: no core sends older notifications
FUTURE_TOLERANCE = 86400.0  # a day: clocks drift, years do not

# Where the undecodable bytes of a text are, as UTF-8 decoding with "replace" sees them (each maximal
# invalid run becomes one U+FFFD): the cut needs them to count dropped bytes as they came. The enqueue
# command is single-threaded; the list is reset before each use.
_invalid_runs: list[tuple[int, int]] = []


def _replace_noting_run(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _invalid_runs.append((exc.start, exc.end))
    return "\ufffd", exc.end


codecs.register_error("alertq-replace-noting", _replace_noting_run)


def clean_text(raw: str | bytes | None, more: int = 0, more_is_exact: bool = True) -> str:
    """Text as valid UTF-8: invalid bytes replaced, cut to 64 KiB (UTF-8 bytes) with a marker.

    `more`: bytes that followed `raw` but were read and discarded (standard input beyond what can be
    kept); `more_is_exact` False when reading stopped before the end. The marker counts the dropped bytes
    of the input as it came, whatever their encoding.
    """
    if raw is None:
        return ""
    # argv arrives as str with undecodable bytes smuggled in as surrogates; get the bytes back first.
    data = raw if isinstance(raw, bytes) else raw_bytes(raw)
    text = data.decode("utf-8", "replace")
    if not more and (len(data) <= TEXT_LIMIT if text.isascii() else len(text.encode()) <= TEXT_LIMIT):
        return text
    total = len(data) + more
    template = CUT_MARKER if more_is_exact else CUT_MARKER.replace("{}", "at least {}")
    del _invalid_runs[:]
    data.decode("utf-8", "alertq-replace-noting")
    runs = list(_invalid_runs)
    # The marker's length depends on the number it carries, which depends on how much fits beside it.
    digits = len(str(total))
    while True:
        kept = _prefix_fitting(data, runs, TEXT_LIMIT - len(template.format("9" * digits)))
        dropped = total - kept
        if len(str(dropped)) >= digits:
            break
        digits = len(str(dropped))
    return data[:kept].decode("utf-8", "replace") + template.format(dropped)


def _prefix_fitting(data: bytes, invalid_runs: list[tuple[int, int]], budget: int) -> int:
    """The longest prefix of `data`, ending between characters, whose text takes at most `budget` bytes.

    Valid UTF-8 keeps its bytes in the text; each invalid run becomes U+FFFD (3 bytes)."""
    used = 0
    position = 0
    for start, end in [*invalid_runs, (len(data), len(data))]:
        valid = start - position
        if used + valid > budget:
            cut = position + budget - used
            while cut > position and data[cut] & 0xC0 == 0x80:  # do not split a character
                cut -= 1
            return cut
        used += valid
        if end == start:  # the sentinel: everything fits
            return end
        if used + 3 > budget:
            return start
        used += 3
        position = end
    return position


def _state(given: list[tuple[str, str]], names: dict[str, int], fallback: int, warnings: list[str]) -> int:
    """The state from the first flag that holds one; else `fallback`, with a warning naming the flag."""
    for _flag, value in given:
        text = value.strip().upper()
        if text in names:
            return names[text]
        # ASCII digits only: int() also reads other scripts' digits ("٢"), which no core sends; and few of
        # them: int() refuses more than 4300.
        if text.isascii() and text.isdigit() and len(text) <= 3 and int(text) in names.values():
            return int(text)
    # Name the value that was meant: the first non-empty one.
    flag, value = next(((f, v) for f, v in given if v.strip()), given[0])
    allowed = ", ".join(f"{n} {s}" for s, n in names.items())
    fallback_name = next(s for s, n in names.items() if n == fallback)
    warnings.append(f"{flag}: {value[:40]!r} is not a state ({allowed}); sent as {fallback_name}")
    return fallback


def _timestamp(value: str | None, received_us: int, warnings: list[str]) -> str:
    """--timestamp as UTC ISO-8601; the time of receipt (µs since the epoch) when it is missing or no
    plausible time. The text is what datetime's isoformat() writes."""
    if not value or value.isspace():
        return iso_utc(received_us)
    seconds: float | None = None
    try:
        # ASCII only, as for every number here; float() would also read other scripts' digits.
        seconds = float(value) if value.isascii() else None
    except ValueError:
        pass
    try:
        if seconds is None:
            from datetime import UTC, datetime

            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            seconds = parsed.timestamp()
        # NaN fails every comparison, so it lands here too.
        if EARLIEST_TIMESTAMP <= seconds <= received_us / 1e6 + FUTURE_TOLERANCE:
            if seconds.is_integer():  # $TIMET$: whole seconds, the common case
                return iso_utc(int(seconds) * 1_000_000)
            from datetime import UTC, datetime

            return datetime.fromtimestamp(seconds, UTC).isoformat()
        reason = "not a time between 2000 and a day from now"
    except (ValueError, OverflowError, OSError):
        reason = "neither epoch seconds nor ISO-8601"
    warnings.append(f"--timestamp: {value[:40]!r} is {reason}; the time of receipt is used")
    return iso_utc(received_us)


def iso_utc(microseconds: int) -> str:
    """Microseconds since the epoch as datetime.fromtimestamp(…, UTC).isoformat() writes them, e.g.
    2026-11-27T09:00:00.250000+00:00 (no fraction when it is zero)."""
    seconds, fraction = divmod(microseconds, 1_000_000)
    t = time.gmtime(seconds)
    text = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{text}.{fraction:06d}+00:00" if fraction else f"{text}+00:00"


def channel_name_ok(name: str) -> bool:
    return 0 < len(name) <= CHANNEL_NAME_MAX and name[0] in CHANNEL_FIRST_CHARS and CHANNEL_CHARS.issuperset(name)


def _notification_number(value: str | None, warnings: list[str]) -> int | None:
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= NOTIFICATION_NUMBER_MAX:
        return int(text)
    warnings.append(f"--notification-number: {value[:40]!r} is not a whole number; left out")
    return None


def _problem_id(value: str | None, warnings: list[str]) -> str | None:
    """The core's problem id; Nagios and Naemon pass 0 when there is no problem (a recovery's)."""
    text = (value or "").strip()
    if text in ("", "0"):
        return None
    if len(text) <= PROBLEM_ID_MAX and PROBLEM_ID_CHARS.issuperset(text):
        return text
    warnings.append(f"--problem-id: {text[:40]!r} is not a problem id ($SERVICEPROBLEMID$); left out")
    return None


def _nonempty(value: str | None) -> str | None:
    return value if value not in (None, "") else None


def build_events(flags: Flags, stdin: Any = None, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    """Validate the invocation and return one event per `--channel`. Raises UsageError.

    A value that only describes the alert (state, timestamp, notification number, problem id) and cannot
    be used is replaced or left out rather than refused, with a line appended to `warnings`.
    """
    if warnings is None:
        warnings = []
    received_us = time.time_ns() // 1000
    v = flags.get
    if not flags.channels:
        raise UsageError("--channel is required (mattermost, slack, email or webhook)")
    for channel in flags.channels:
        if not channel_name_ok(channel):
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
        state_flags = ("--state", "--servicestate")
        names, fallback = SERVICE_STATES, SERVICE_STATE_FALLBACK
    else:
        state_flags = ("--state", "--hoststate")
        names, fallback = HOST_STATES, HOST_STATE_FALLBACK
    # "--state" -> the value of flag `state`; an empty value stays in (a macro the core left empty).
    given = [(flag, value) for flag in state_flags if (value := v(flag.removeprefix("--"))) is not None]
    if not given:
        raise UsageError(f"--state is required ({'$SERVICESTATEID$' if service else '$HOSTSTATEID$'})")
    if notification_type.upper() == "RECOVERY":
        fallback = RECOVERED_STATE
    state = _state(given, names, fallback, warnings)

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
        "created_at": _timestamp(_nonempty(v("timestamp")), received_us, warnings),
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
        # Raw: the cut marker counts the bytes as they came.
        "output": _read_text("--output", flags.raw("output"), stdin, warnings),
        "long_output": _read_text("--long-output", flags.raw("long_output"), stdin, warnings),
        "ack": ack,
        "notification_number": _notification_number(v("notification_number"), warnings),
        "problem_id": _problem_id(v("problem_id"), warnings),
        "contact": contact,
        "escalation": {"policy": policy, "step": 0} if policy else None,
        "source": {"producer_host": valid_text(os.uname().nodename), "core": v("core") or "naemon"},
    }
    return [{"event_id": uuid4(), "channel": channel, **common} for channel in flags.channels]


def uuid4() -> str:
    """A random (version 4) UUID as text, like str(uuid.uuid4())."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _read_text(flag: str, value: str | None, stdin: Any, warnings: list[str]) -> str:
    if value == "-" and stdin is not None:
        try:
            return _read_stdin(stdin)
        except OSError as exc:
            warnings.append(f"{flag} -: standard input could not be read ({exc.strerror or exc}); sent empty")
            return ""
    return clean_text(value)


def _read_stdin(stdin: Any) -> str:
    """Standard input as text: what can be kept is read, the rest read and counted for the cut marker."""
    # Text never takes fewer bytes than its input (an invalid run becomes 3 bytes), so no more than
    # TEXT_LIMIT bytes can be kept; one byte more tells that there is more.
    head: bytes = stdin.read(TEXT_LIMIT + 1)
    more = 0
    if len(head) > TEXT_LIMIT:
        while more < STDIN_COUNT_LIMIT:
            chunk = stdin.read(STDIN_CHUNK)
            if not chunk:
                return clean_text(head, more)
            more += len(chunk)
        return clean_text(head, more, more_is_exact=False)
    return clean_text(head)
