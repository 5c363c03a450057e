"""Routing config for the escalator: contacts, contact groups, periods and escalation policies (TOML).

Contacts follow openITCOCKPIT's model: per-kind notifications-enabled flags, notification options per
state, a notification period, and an address per channel. A policy is an ordered list of steps
`{after, notify, channels}` plus `repeat`; it applies to events whose host/service match its globs, or
to events enqueued with `--escalation-policy NAME`.

`load_routing(path)` raises `RoutingError` with one line that names the file, the line and the field:
`routing.toml:14: policies.db-team.steps[1].after: not a duration: '5 minutes'`.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, time, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.alert import AlertEvent

REPEAT_CAP = 20
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HostOption = Literal["down", "unreachable", "recovery", "flapping", "downtime"]
ServiceOption = Literal["warning", "unknown", "critical", "recovery", "flapping", "downtime"]
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_RANGE = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")


class RoutingError(ValueError):
    """A routing file that cannot be used; the message is one line."""


def parse_duration(value: Any) -> timedelta:
    """`30s`, `5m`, `1h30m`, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match and any(match.groups()):
            hours, minutes, seconds = (int(g or 0) for g in match.groups())
            return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    raise ValueError(f"not a duration (like 30s, 5m, 1h30m): {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeRange(_Model):
    start: time
    end: time  # 24:00 is stored as time.max: the range runs to the end of the day

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _RANGE.fullmatch(value.strip())
        if not match:
            raise ValueError(f"not a time range (like 08:00-18:00): {value!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
            raise ValueError(f"not a time of day in {value!r}")
        end = time.max if h2 == 24 else time(h2, m2)
        start = time(h1, m1)
        if end <= start:
            raise ValueError(f"range ends before it starts: {value!r}")
        return {"start": start, "end": end}

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end or (self.end == time.max and moment >= self.start)


class Period(_Model):
    """When a contact may be notified: time ranges per weekday, in the routing file's time zone."""

    monday: list[TimeRange] = Field(default_factory=list)
    tuesday: list[TimeRange] = Field(default_factory=list)
    wednesday: list[TimeRange] = Field(default_factory=list)
    thursday: list[TimeRange] = Field(default_factory=list)
    friday: list[TimeRange] = Field(default_factory=list)
    saturday: list[TimeRange] = Field(default_factory=list)
    sunday: list[TimeRange] = Field(default_factory=list)

    def contains(self, local: datetime) -> bool:
        ranges: list[TimeRange] = getattr(self, WEEKDAYS[local.weekday()])
        return any(r.contains(local.time()) for r in ranges)


class Contact(_Model):
    email: str | None = None
    phone: str | None = None
    pager: str | None = None
    host_notifications_enabled: bool = True
    service_notifications_enabled: bool = True
    host_options: list[HostOption] = Field(default_factory=lambda: list(get_args(HostOption)))
    service_options: list[ServiceOption] = Field(default_factory=lambda: list(get_args(ServiceOption)))
    period: str | None = Field(None, description="A name in [periods]; none: always.")
    addresses: dict[str, str] = Field(
        default_factory=dict, description="Channel name → address (webhook URL, channel, e-mail address)."
    )

    def address_for(self, channel: str) -> str | None:
        if channel in self.addresses:
            return self.addresses[channel]
        return self.email if channel == "email" else None


class ContactGroup(_Model):
    members: list[str] = Field(min_length=1)


class Step(_Model):
    after: Duration = Field(description="Delay after the incident opened (step 1) or after the previous step.")
    notify: list[str] = Field(min_length=1, description="Contact and group names.")
    channels: list[str] = Field(min_length=1)


class Policy(_Model):
    hosts: list[str] = Field(default_factory=list, description="Globs on host name or display name.")
    services: list[str] = Field(default_factory=list, description="Globs on service name; none: any.")
    steps: list[Step] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=REPEAT_CAP, description="Times the last step repeats after the first.")


class RoutingConfig(_Model):
    timezone: str = "UTC"
    periods: dict[str, Period] = Field(default_factory=dict)
    contacts: dict[str, Contact] = Field(default_factory=dict)
    groups: dict[str, ContactGroup] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def policy_for(self, event: AlertEvent) -> Policy | None:
        """The event's `--escalation-policy` if it names one, else the first policy whose globs match."""
        if event.escalation is not None and event.escalation.policy:
            return self.policies.get(event.escalation.policy)
        for policy in self.policies.values():
            if _matches(policy, event):
                return policy
        return None

    def policy_name(self, policy: Policy) -> str:
        return next(name for name, p in self.policies.items() if p is policy)

    def members(self, names: list[str]) -> list[str]:
        """Contact names behind contact and group names, in order, each once."""
        seen: dict[str, None] = {}
        for name in names:
            for contact in self.groups[name].members if name in self.groups else [name]:
                seen.setdefault(contact, None)
        return list(seen)

    def recipients(self, step: Step, event: AlertEvent, now: datetime) -> list[tuple[str, str, str]]:
        """(contact, channel, address) for each contact of the step who wants this event now."""
        local = now.astimezone(self.zone)
        result: list[tuple[str, str, str]] = []
        for name in self.members(step.notify):
            contact = self.contacts[name]
            if not _wants(contact, event):
                continue
            if contact.period is not None and not self.periods[contact.period].contains(local):
                continue
            for channel in step.channels:
                address = contact.address_for(channel)
                if address is not None:
                    result.append((name, channel, address))
        return result

    def check_references(self, channels: set[str] | None = None) -> None:
        """Names that must exist do; raises ValueError with the field path first (`path: reason`)."""
        for name in self.groups.keys() & self.contacts.keys():
            raise ValueError(f"groups.{name}: a contact has the same name")
        for name, contact in self.contacts.items():
            if contact.period is not None and contact.period not in self.periods:
                raise ValueError(f"contacts.{name}.period: no period {contact.period!r}")
            for channel in contact.addresses:
                if channels is not None and channel not in channels:
                    raise ValueError(f"contacts.{name}.addresses.{channel}: no channel {channel!r}")
        for name, group in self.groups.items():
            for i, member in enumerate(group.members):
                if member not in self.contacts:
                    raise ValueError(f"groups.{name}.members[{i}]: no contact {member!r}")
            if len(set(group.members)) != len(group.members):
                raise ValueError(f"groups.{name}.members: a contact is named twice")
        for name, policy in self.policies.items():
            for s, step in enumerate(policy.steps):
                for i, target in enumerate(step.notify):
                    if target not in self.contacts and target not in self.groups:
                        raise ValueError(f"policies.{name}.steps[{s}].notify[{i}]: no contact or group {target!r}")
                for i, channel in enumerate(step.channels):
                    if channels is not None and channel not in channels:
                        raise ValueError(f"policies.{name}.steps[{s}].channels[{i}]: no channel {channel!r}")


def _matches(policy: Policy, event: AlertEvent) -> bool:
    if not policy.hosts and not policy.services:
        return False  # a policy without globs is only for `--escalation-policy`
    host_ok = not policy.hosts or any(
        fnmatchcase(candidate, glob)
        for glob in policy.hosts
        for candidate in (event.host.name, event.host.display_name)
    )
    if not policy.services:
        return host_ok
    return (
        host_ok
        and event.service is not None
        and any(
            fnmatchcase(candidate, glob)
            for glob in policy.services
            for candidate in (event.service.name, event.service.display_name)
        )
    )


def state_option(event: AlertEvent) -> str | None:
    """The openITCOCKPIT notification option an event falls under (None: no option governs it)."""
    kind = event.notification_type.upper()
    if kind == "RECOVERY":
        return "recovery"
    if kind.startswith("FLAPPING"):
        return "flapping"
    if kind.startswith("DOWNTIME"):
        return "downtime"
    if kind != "PROBLEM":
        return None
    if event.kind == "service":
        return {1: "warning", 2: "critical", 3: "unknown"}.get(event.state)
    return {1: "down", 2: "unreachable"}.get(event.state)


def _wants(contact: Contact, event: AlertEvent) -> bool:
    if event.kind == "service":
        enabled, options = contact.service_notifications_enabled, list[str](contact.service_options)
    else:
        enabled, options = contact.host_notifications_enabled, list[str](contact.host_options)
    option = state_option(event)
    return enabled and (option is None or option in options)


def load_routing(path: Path, channels: set[str] | None = None) -> RoutingConfig:
    """Read and validate a routing file; `channels` are the channel names steps may name."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoutingError(_toml_error(path, text, exc)) from None
    lines = key_lines(text)
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        raise RoutingError(f"{path}:{_line_of(lines, loc)}: {_dotted(loc)}: {_reason(error)}") from None
    try:
        config.check_references(channels)
    except ValueError as exc:
        field, _, reason = str(exc).partition(": ")
        loc = _undotted(field)
        raise RoutingError(f"{path}:{_line_of(lines, loc)}: {field}: {reason}") from None
    return config


def _toml_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """`file:LINE: reason` like the validation errors; tomllib appends `(at line N, column M)`."""
    message = str(exc)
    at = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
    if at:
        return f"{path}:{at.group(1)}: {message[: at.start()]}"
    return f"{path}:{len(text.splitlines()) or 1}: {message.replace(' (at end of document)', '')}: at end of file"


def _reason(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    return " ".join(message.split())


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _undotted(field: str) -> tuple[Any, ...]:
    loc: list[Any] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        loc.append(int(index) if index else name)
    return tuple(loc)


# Line numbers: tomllib keeps none, so map each key path to the line that sets it. Covers what a routing
# file uses: [tables], [[arrays of tables]], dotted and quoted keys; a value's array elements share its line.
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r'^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\'))*)\s*=')


def _split_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', key)]


def key_lines(text: str) -> dict[tuple[Any, ...], int]:
    lines: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = _split_key(header.group(2))
            # Resolve array-of-tables parents to their latest element: [[a.steps]] under [a] etc.
            resolved: list[Any] = []
            for name in names:
                resolved.append(name)
                parent = tuple(resolved)
                if parent in counts and len(resolved) < len(names):
                    resolved.append(counts[parent] - 1)
            path = tuple(resolved)
            if header.group(1) == "[[":
                index = counts.get(path, 0)
                counts[path] = index + 1
                lines.setdefault(path, number)
                path = (*path, index)
            lines.setdefault(path, number)
            table = path
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*table, *_split_key(key.group(1))), number)
    return lines


def _line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    """The line of the longest prefix of `loc` the file sets (1 when none: a missing top-level key)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1
