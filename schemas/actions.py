"""What a chat button can ask the core to do, and the Snooze choices: names, labels and end times.

Pure, no I/O: the clock and the time zone are parameters. An action's name is what the signed token,
the `alertq.ack` message, the channel settings (`actions`) and the listener's allow-lists call it.
A Snooze choice is `<n>m`, `<n>h`, `<n>d` (a downtime that long from the click) or `until HH:MM`
(until the next such local time: today if it is still ahead, else tomorrow).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal, get_args

Action = Literal["acknowledge", "snooze", "recheck", "unacknowledge"]
ACTIONS: tuple[Action, ...] = get_args(Action)

LABELS: dict[str, str] = {
    "acknowledge": "Acknowledge",
    "snooze": "Snooze",
    "recheck": "Recheck now",
    "unacknowledge": "Unacknowledge",
}

_SPAN = re.compile(r"([1-9][0-9]{0,4})([mhd])")
_UNTIL = re.compile(r"until ([01][0-9]|2[0-3]):([0-5][0-9])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86_400}
LONGEST = timedelta(days=366)  # a downtime longer than that is a mistake, not a snooze


def check_action(value: str) -> Action:
    if value not in ACTIONS:
        raise ValueError(f"unknown action {value!r}: expected one of {', '.join(ACTIONS)}")
    return value


def check_snooze_choice(value: str) -> str:
    """The choice as written, if it is one; else ValueError saying what is expected."""
    text = value.strip()
    span = _SPAN.fullmatch(text)
    if span is not None and int(span[1]) * _UNIT_SECONDS[span[2]] <= LONGEST.total_seconds():
        return text
    if _UNTIL.fullmatch(text):
        return text
    raise ValueError(f"snooze choice {value!r} is not '<n>m', '<n>h', '<n>d' (at most 366 days) or 'until HH:MM'")


def snooze_end(choice: str, clicked_at: datetime) -> datetime:
    """When a snooze chosen at `clicked_at` (an aware local time) ends."""
    span = _SPAN.fullmatch(choice)
    if span is not None:
        return clicked_at + timedelta(seconds=int(span[1]) * _UNIT_SECONDS[span[2]])
    until = _UNTIL.fullmatch(choice)
    if until is None:
        raise ValueError(f"snooze choice {choice!r} is not valid")
    end = clicked_at.replace(hour=int(until[1]), minute=int(until[2]), second=0, microsecond=0)
    if end <= clicked_at:
        # The same wall-clock time tomorrow (a DST change makes that day 23 or 25 hours long).
        end = (end.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=clicked_at.tzinfo)
    return end


def snooze_label(choice: str) -> str:
    """The button's text: "Snooze 1 h", "Snooze until 08:00"."""
    span = _SPAN.fullmatch(choice)
    if span is not None:
        return f"Snooze {span[1]} {span[2]}"
    return f"Snooze {choice}"


def button_label(action: str, choice: str | None = None) -> str:
    return snooze_label(choice) if action == "snooze" and choice is not None else LABELS[action]
