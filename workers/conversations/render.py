"""What a conversation shows: the root post in its current state, and the thread replies.

The root is the post webhook mode would make for the event that started the conversation (the same
attachment or blocks, built by the channel modules, so both modes say the same words), plus what
happened since: the contacts notified, who acknowledged and why (the button removed), the recovery
("recovered after 12 min", in the recovered colour). It is rendered whole from the store at every
post and edit, so an edit never depends on what an earlier edit showed. Replies are short texts: the
notification's line, its summary, the plugin output, an escalation step's mention.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.alert import AlertEvent
from schemas.channels import MattermostSettings, SlackSettings
from workers.channels import mattermost, slack
from workers.render import clip, render

REPLY_OUTPUT_LIMIT = 3000
# A chat user name that can be mentioned as it is (no markup to escape, nothing to break out of).
_MENTIONABLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class RootView:
    """Everything the root shows."""

    event: AlertEvent  # the event that started the conversation (the first PROBLEM, as a rule)
    contacts: tuple[str, ...]
    ack_author: str | None
    ack_comment: str | None
    recovery: AlertEvent | None

    @property
    def settled(self) -> bool:
        """Acknowledged or recovered: no Acknowledge left to click (an acknowledged root keeps the channel's
        Snooze, Recheck now and Unacknowledge)."""
        return self.recovery is not None or bool(self.ack_author)


def duration(seconds: float) -> str:
    """`40 s`, `12 min`, `2 h 5 min`, `3 d 4 h`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def recovered_after(view: RootView) -> str | None:
    if view.recovery is None or view.event.notification_type != "PROBLEM":
        return None
    return duration((view.recovery.created_at - view.event.created_at).total_seconds())


def mention(event: AlertEvent, chat: str) -> str | None:
    """How to mention an escalation step's contact in a thread: `@alice` (Mattermost, or a Slack name
    that will not ping), `<@U123>` for a Slack user id; None when there is nobody safe to name."""
    if event.escalation is None or event.escalation.step < 1 or event.contact is None:
        return None
    address = (event.contact.address or "").strip()
    if chat == "slack" and _SLACK_USER_ID.match(address):
        return f"<@{address}>"
    name = address[1:] if address.startswith("@") else (event.contact.name or "")
    return f"@{name}" if _MENTIONABLE.match(name) else None


# -- a thread reply, in either chat's markup ---------------------------------------------------------------


@dataclass(frozen=True)
class Markup:
    """What differs between the chats' texts: the chat's name (for mentions), its bold, slant and
    strike-through marks and its escaping."""

    chat: str
    bold: str
    slant: str
    strike: str
    escape: Callable[[str], str]


_MATTERMOST_MARKUP = Markup("mattermost", "**", "*", "~~", mattermost.escape)
_SLACK_MARKUP = Markup("slack", "*", "_", "~", slack.escape)
MARKUP = {"mattermost": _MATTERMOST_MARKUP, "slack": _SLACK_MARKUP}


def reply_text(event: AlertEvent, ui_base_url: str | None, after: str | None, markup: Markup) -> str:
    """A thread reply: the notification's line (with its number on a re-notification, "after" on a
    recovery), its summary, the acknowledgement's comment, the plugin output, an escalation's mention."""
    escape, bold, slant = markup.escape, markup.bold, markup.slant
    notice = render(event, ui_base_url)
    head = f"{notice.emoji} {bold}{escape(notice.notification_type)}{bold}"
    if event.notification_type == "PROBLEM" and event.notification_number and notice.escalation is None:
        head += f" (notification {event.notification_number})"
    line = f"{head}: {escape(notice.label)} is {bold}{notice.state}{bold}"
    if after:
        line += f" after {after}"
    lines = [line]
    if notice.summary_adds:
        lines.append(escape(notice.summary))
    if event.ack is not None and event.ack.comment:
        lines.append(f"> {escape(event.ack.comment)}")
    if notice.output:
        lines.append(escape(clip(notice.output, REPLY_OUTPUT_LIMIT)))
    if notice.escalation:
        who = mention(event, markup.chat)
        lines.append(f"{slant}{escape(notice.escalation)}{slant}" + (f" {who}" if who else ""))
    return "\n".join(lines)


# -- Mattermost -------------------------------------------------------------------------------------------


def mattermost_root(view: RootView, settings: MattermostSettings, now: float) -> list[dict[str, Any]]:
    """The root's attachments (`props.attachments`); a patch replaces the whole props map, so every
    edit sends all of it."""
    escape = mattermost.escape
    payload = mattermost.build_payload(view.event, settings, now)
    [attachment] = payload["attachments"]
    lines = []
    if view.recovery is not None:
        notice = render(view.recovery, settings.ui_base_url)
        after = recovered_after(view)
        when = f" after {after}" if after else ""
        lines.append(f"{notice.emoji} **RECOVERED{when}**: {escape(notice.label)} is **{notice.state}**")
        attachment["color"] = notice.color
        attachment["fallback"] = mattermost.no_mentions(f"RECOVERED: {notice.label} is {notice.state}")
    if view.ack_author:
        comment = f": {escape(view.ack_comment)}" if view.ack_comment else ""
        lines.append(f":speech_balloon: **Acknowledged** by {escape(view.ack_author)}{comment}")
    if lines:
        attachment["text"] = "\n".join([*lines, attachment["text"]])
    if view.settled:
        attachment.pop("actions", None)
        if view.recovery is None:  # acknowledged: Snooze, Recheck now, Unacknowledge, if the channel has them
            actions = mattermost.actions_for(view.event, settings, now, acknowledged=True)
            if actions:
                attachment["actions"] = actions
    if view.contacts:
        notified = {"title": "Notified", "value": escape(", ".join(view.contacts)), "short": False}
        attachment["fields"] = [*attachment.get("fields", []), notified]
    return [attachment]


def mattermost_reply(event: AlertEvent, settings: MattermostSettings, after: str | None = None) -> str:
    return reply_text(event, settings.ui_base_url, after, _MATTERMOST_MARKUP)


# -- Slack ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackRoot:
    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]


def slack_root(view: RootView, settings: SlackSettings, now: float) -> SlackRoot:
    escape = slack.escape
    payload = slack.build_payload(view.event, settings, now)
    blocks: list[dict[str, Any]] = payload["blocks"]
    attachments: list[dict[str, Any]] = payload["attachments"]
    text: str = payload["text"]
    added: list[dict[str, Any]] = []
    if view.recovery is not None:
        notice = render(view.recovery, settings.ui_base_url)
        after = recovered_after(view)
        when = f" after {after}" if after else ""
        title = f"RECOVERED{when}: {notice.label} is {notice.state}"
        blocks[0] = {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(f"{notice.emoji} {title}", slack.HEADER_LIMIT), "emoji": True},
        }
        text = escape(title)
        attachments = [{"color": notice.color, "fallback": text, "text": ""}]
    if view.ack_author:
        comment = f": {escape(view.ack_comment)}" if view.ack_comment else ""
        line = f":speech_balloon: *Acknowledged* by {escape(view.ack_author)}{comment}"
        added.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(line, slack.SECTION_LIMIT)}})
    if view.settled:
        blocks = [block for block in blocks if block.get("type") != "actions"]
        acknowledged = slack.actions_block(view.event, settings, now, acknowledged=True)
        if view.recovery is None and acknowledged is not None:
            blocks.append(acknowledged)
    blocks = [blocks[0], *added, *blocks[1:]]
    if view.contacts:
        notified = clip("Notified: " + ", ".join(view.contacts), slack.SECTION_LIMIT)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(notified)}]})
    return SlackRoot(text, blocks, attachments)


def slack_reply(event: AlertEvent, settings: SlackSettings, after: str | None = None) -> str:
    return reply_text(event, settings.ui_base_url, after, _SLACK_MARKUP)
