"""Which buttons a two-way chat post carries, each with its own signed token (schemas/ack_token.py).

A problem (PROBLEM in a non-OK state) gets the channel's `actions` among Acknowledge, Snooze (one
button per `[ack] snooze_choices`) and Recheck now; an acknowledged problem (an ACKNOWLEDGEMENT
notification, or an API-mode root once acknowledged) gets Snooze, Recheck now and Unacknowledge.
Anything else (recoveries, a recovered root) gets none. The order is the channel's `actions` order.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.ack_token import token_for
from schemas.actions import Action, button_label
from schemas.alert import AlertEvent
from schemas.channels import TwoWayChannelSettings
from workers.render import is_problem

ON_PROBLEMS: frozenset[Action] = frozenset({"acknowledge", "snooze", "recheck"})
ON_ACKNOWLEDGED: frozenset[Action] = frozenset({"snooze", "recheck", "unacknowledge"})
# Short ids: Mattermost routes a click only on an action id of [A-Za-z0-9]+, Slack wants them unique.
IDS = {"acknowledge": "ack", "snooze": "snooze", "recheck": "recheck", "unacknowledge": "unack"}


@dataclass(frozen=True)
class Button:
    action: Action
    key: str  # unique among the post's buttons: ack, snooze0, snooze1, recheck, unack
    label: str
    token: str
    style: str | None  # "danger" for Acknowledge, as openITCOCKPIT's module shows it


def is_acknowledged_problem(event: AlertEvent) -> bool:
    return event.notification_type == "ACKNOWLEDGEMENT" and event.state != 0


def buttons_for(
    event: AlertEvent, settings: TwoWayChannelSettings, now: float, *, acknowledged: bool | None = None
) -> list[Button]:
    """The post's buttons; `acknowledged` overrides what the event says (a root acknowledged since)."""
    if not settings.two_way:
        return []
    if acknowledged is None:
        acknowledged = is_acknowledged_problem(event)
        offered = ON_ACKNOWLEDGED if acknowledged else ON_PROBLEMS if is_problem(event) else frozenset()
    else:
        offered = ON_ACKNOWLEDGED if acknowledged else ON_PROBLEMS
    buttons: list[Button] = []
    for action in settings.actions:
        if action not in offered:
            continue
        choices: list[str | None] = list(settings.ack.snooze_choices) if action == "snooze" else [None]
        for number, choice in enumerate(choices):
            key = IDS[action] + (str(number) if action == "snooze" else "")
            token = token_for(event, settings.ack, now=now, action=action, snooze=choice)
            style = "danger" if action == "acknowledge" else None
            buttons.append(Button(action, key, button_label(action, choice), token, style))
    return buttons
