"""What a notification says, whichever channel carries it: titles, state names, colours, emoji, links.

Every channel renders from one `Notice`, so Mattermost, Slack and e-mail say the same thing in the
same words; a channel only adds its own markup and escaping. The texts here are plain (unescaped)
strings: user-controlled parts (names, plugin output, ack comments) are escaped by the channel for
its own format. Colours and UI links follow openITCOCKPIT's own modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from schemas.alert import AlertEvent

HOST_COLORS = {0: "#5cb85c", 1: "#d9534f", 2: "#adadad"}
SERVICE_COLORS = {0: "#5cb85c", 1: "#f0ad4e", 2: "#d9534f", 3: "#adadad"}
INFO_COLOR = "#1895f5"
# Types that tell of something other than a state change: openITCOCKPIT shows them in its info blue.
INFO_TYPES = frozenset(
    {
        "ACKNOWLEDGEMENT",
        "DOWNTIMESTART",
        "DOWNTIMEEND",
        "DOWNTIMECANCELLED",
        "FLAPPINGSTART",
        "FLAPPINGSTOP",
        "FLAPPINGDISABLED",
        "CUSTOM",
    }
)

# Emoji shortcodes both Mattermost and Slack know.
STATE_EMOJI = {
    ("host", 0): ":white_check_mark:",
    ("host", 1): ":red_circle:",
    ("host", 2): ":grey_question:",
    ("service", 0): ":white_check_mark:",
    ("service", 1): ":warning:",
    ("service", 2): ":red_circle:",
    ("service", 3): ":grey_question:",
}
TYPE_EMOJI = {
    "RECOVERY": ":white_check_mark:",
    "ACKNOWLEDGEMENT": ":speech_balloon:",
    "FLAPPINGSTART": ":arrows_counterclockwise:",
    "FLAPPINGSTOP": ":arrows_counterclockwise:",
    "FLAPPINGDISABLED": ":arrows_counterclockwise:",
    "DOWNTIMESTART": ":zzz:",
    "DOWNTIMEEND": ":bell:",
    "DOWNTIMECANCELLED": ":bell:",
    "CUSTOM": ":loudspeaker:",
}
UNKNOWN_TYPE_EMOJI = ":grey_question:"

TRUNCATION_MARK = "… (truncated)"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Fact:
    """One labelled value (a Mattermost/Slack field, a line of the mail). `short`: fits half a row."""

    label: str
    value: str
    short: bool = True


@dataclass(frozen=True)
class Notice:
    notification_type: str
    kind: str
    emoji: str
    color: str
    host: str  # display names, one line each
    service: str | None
    label: str  # "web01" or "web01 / Disk"
    state: str
    title: str  # "PROBLEM: web01 / Disk is CRITICAL"
    summary: str  # one sentence on what happened, in words (ack comments are in `facts`)
    output: str
    long_output: str
    url: str | None  # the object's page in the UI: the service's for a service, else the host's
    host_url: str | None
    service_url: str | None
    facts: tuple[Fact, ...]
    escalation: str | None  # "Escalated (step 2, since 2026-11-27 19:30:00 UTC)"
    fallback: str | None  # "Fallback: slack gave up (permanent): slack channel C0ALERTS not found (…)"
    when: str  # "2026-11-27 19:44:42 UTC"
    timestamp: int  # created_at as epoch seconds
    is_problem: bool  # a PROBLEM in a non-OK state: the only thing worth an Acknowledge button

    @property
    def summary_adds(self) -> bool:
        """Whether the summary says more than the title (it does not for plain state changes)."""
        return self.notification_type not in ("PROBLEM", "RECOVERY")


def render(event: AlertEvent, ui_base_url: str | None = None) -> Notice:
    kind = event.kind
    notification_type = one_line(event.notification_type) or "?"
    # Names go into titles, subjects and links: one line each, whatever the core sent.
    host = one_line(event.host.display_name or event.host.name)
    service = None if event.service is None else one_line(event.service.display_name or event.service.name)
    label = host if service is None else f"{host} / {service}"
    host_url = ui_link(ui_base_url, "hosts", event.host.id)
    service_url = None if event.service is None else ui_link(ui_base_url, "services", event.service.id)
    notice = Notice(
        notification_type=notification_type,
        kind=kind,
        emoji=emoji(event),
        color=color(event),
        host=host,
        service=service,
        label=label,
        state=event.state_name,
        title=f"{notification_type}: {label} is {event.state_name}",
        summary=summary(event, host, service),
        output=event.output,
        long_output=event.long_output,
        url=service_url or host_url,
        host_url=host_url,
        service_url=service_url,
        facts=facts(event, host, service),
        escalation=escalation_line(event),
        fallback=fallback_line(event),
        when=format_time(event.created_at),
        timestamp=int(event.created_at.timestamp()),
        is_problem=is_problem(event),
    )
    return _valid_notice(notice)


def _valid_notice(notice: Notice) -> Notice:
    texts: dict[str, Any] = {
        name: getattr(notice, name) for name in _TEXT_FIELDS if isinstance(getattr(notice, name), str)
    }
    everything = "".join([*texts.values(), *(f.label + f.value for f in notice.facts)])
    if _LONE_SURROGATE.search(everything) is None:  # the usual case: one scan, nothing to rebuild
        return notice
    valid_texts: dict[str, Any] = {name: valid_text(text) for name, text in texts.items()}
    valid_facts = tuple(Fact(valid_text(f.label), valid_text(f.value), f.short) for f in notice.facts)
    return replace(notice, facts=valid_facts, **valid_texts)


_TEXT_FIELDS = tuple(f.name for f in fields(Notice) if f.name != "facts")  # those that may hold a str


def is_problem(event: AlertEvent) -> bool:
    return event.notification_type == "PROBLEM" and event.state != 0


def color(event: AlertEvent) -> str:
    if event.notification_type in INFO_TYPES:
        return INFO_COLOR
    colors = SERVICE_COLORS if event.kind == "service" else HOST_COLORS
    return colors.get(event.state, INFO_COLOR)


def emoji(event: AlertEvent) -> str:
    if event.notification_type == "PROBLEM":
        return STATE_EMOJI.get((event.kind, event.state), UNKNOWN_TYPE_EMOJI)
    return TYPE_EMOJI.get(event.notification_type, UNKNOWN_TYPE_EMOJI)


def ui_link(base_url: str | None, section: str, object_id: str) -> str | None:
    """openITCOCKPIT's page of a host or service: `<base>/a/<hosts|services>/browser/<id>`."""
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/a/{section}/browser/{quote(object_id, safe='')}"


def summary(event: AlertEvent, host: str, service: str | None) -> str:
    thing = f"Host {host}" if service is None else f"Service {service} on host {host}"
    of_thing = f"host {host}" if service is None else f"service {service} on host {host}"
    state = event.state_name
    by = f" by {event.ack.author}" if event.ack and event.ack.author else ""
    match event.notification_type:
        case "PROBLEM":
            return f"{thing} is {state}."
        case "RECOVERY":
            return f"{thing} recovered and is {state}."
        case "ACKNOWLEDGEMENT":
            return f"The problem of {of_thing} ({state}) was acknowledged{by}."
        case "FLAPPINGSTART":
            return f"{thing} started flapping: its state keeps changing (now {state})."
        case "FLAPPINGSTOP":
            return f"{thing} stopped flapping (now {state})."
        case "FLAPPINGDISABLED":
            return f"Flap detection for {of_thing} was disabled (now {state})."
        case "DOWNTIMESTART":
            return f"{thing} entered a scheduled downtime: notifications are paused (now {state})."
        case "DOWNTIMEEND":
            return f"The scheduled downtime of {of_thing} ended: notifications resume (now {state})."
        case "DOWNTIMECANCELLED":
            return f"The scheduled downtime of {of_thing} was cancelled: notifications resume (now {state})."
        case "CUSTOM":
            return f"Custom notification{by} about {of_thing} ({state})."
        case other:
            return f"Notification of type {one_line(other)} about {of_thing} ({state})."


def facts(event: AlertEvent, host: str, service: str | None) -> tuple[Fact, ...]:
    found = [Fact("Host", host)]
    if service is not None:
        found.append(Fact("Service", service))
    found.append(Fact("State", event.state_name))
    if event.host.address:
        found.append(Fact("Address", event.host.address))
    if event.notification_number is not None:
        found.append(Fact("Notification number", str(event.notification_number)))
    if event.ack is not None:
        # The core fills author/comment for acknowledgements and for custom notifications alike.
        if event.ack.author:
            by = "Acknowledged by" if event.notification_type == "ACKNOWLEDGEMENT" else "Author"
            found.append(Fact(by, event.ack.author))
        if event.ack.comment:
            found.append(Fact("Comment", event.ack.comment, short=False))
    return tuple(found)


def escalation_line(event: AlertEvent) -> str | None:
    if event.escalation is None or event.escalation.step < 1:
        return None
    since = f", since {format_time(event.escalation.since)}" if event.escalation.since else ""
    return f"Escalated (step {event.escalation.step}{since})"


def fallback_line(event: AlertEvent) -> str | None:
    """Why this came here: the channel it was meant for gave up on it (workers/fallback.py)."""
    if event.fallback is None:
        return None
    return one_line(f"Fallback: {event.fallback.note}")


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with a visible mark when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATION_MARK))] + TRUNCATION_MARK


_CONTROL_TO_SPACE = {code: " " for code in (*range(32), 127)}


def one_line(text: str) -> str:
    """For headers and titles: control characters (CR, LF, tabs) become spaces."""
    return text.translate(_CONTROL_TO_SPACE).strip()


def valid_text(text: str) -> str:
    """`text` as valid Unicode: lone surrogates (from odd JSON input) become U+FFFD, never an encode crash."""
    return _LONE_SURROGATE.sub("\ufffd", text)
