"""Mattermost: an incoming-webhook post shaped like openITCOCKPIT's own Mattermost module.

One attachment coloured by state: emoji, notification type, the (linked) host/service name and the
state, then the plugin output, then fields. With `two_way`, problems carry an "Acknowledge" button
whose integration calls the ack listener with a signed token in its context (Mattermost does not
sign its calls, so the token is the only proof). Mattermost answers 200 `ok`.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING, Any

from delivery.http import HttpClient
from schemas.alert import AlertEvent
from schemas.channels import ChannelSettings, MattermostSettings
from workers.channels.base import Notifier
from workers.channels.buttons import buttons_for
from workers.folds import NO_HOLD, Hold, hold_of
from workers.render import Notice, clip, render

OUTPUT_LIMIT = 4000  # far below Mattermost's 16383-character post limit, room for the rest
FIELD_LIMIT = 1000

# Characters CommonMark would read as markup; a backslash makes each literal.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~#])")
# "@channel", "@here", "@all" or "@user" in plugin output must not ping anybody: a word joiner
# after "@" breaks the mention and stays invisible.
_MENTION = re.compile(r"@(?=\w)")

if TYPE_CHECKING:  # digest.py imports this module
    from workers.conversations.digest import PartView


def no_mentions(text: str) -> str:
    return _MENTION.sub("@\u2060", text)


# Either of the above: most names and outputs hold neither, and one search is cheaper than two subs.
_SPECIAL = re.compile(r"[\\`*_\[\]<>|~#]|@\w")


def escape(text: str) -> str:
    """Markdown-escaped text that mentions nobody."""
    if _SPECIAL.search(text) is None:
        return text
    return no_mentions(_MARKDOWN.sub(r"\\\1", text))


def link_target(url: str) -> str:
    # Parentheses and spaces would end a Markdown link target early.
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


class MattermostNotifier(Notifier):
    name = "mattermost"

    def __init__(self, settings: ChannelSettings) -> None:
        super().__init__(settings)
        if not isinstance(settings, MattermostSettings):
            raise TypeError("MattermostNotifier needs MattermostSettings")
        self.config = settings
        self.http = HttpClient(settings.http, user_agent="alertq-mattermost")
        # Webhook mode's target, hashed once: it is asked several times per delivery.
        self._webhook_target = f"mattermost:{_url_hash(settings)}"
        # API mode: one conversation per incident (workers/conversations/); webhook mode: one post per
        # notification and destination, however many contacts it went to.
        from workers.conversations.setup import conversations_for, folds_for, storms_for, webhook_storms_for

        self.conversations = conversations_for(settings)
        self.folds = folds_for(settings)
        self.storms = storms_for(settings, self.conversations)
        self.webhook_storms = webhook_storms_for(settings, self.folds)

    def target(self, event: AlertEvent) -> str:
        if self.conversations is not None:
            return self.conversations.target(event)
        return self._webhook_target

    def paces_itself(self, event: AlertEvent) -> bool:
        # The API client keeps to the server's rate limit; webhook mode's storm rule to the webhook's.
        return self.conversations is not None or self.webhook_storms is not None

    def payload(self, event: AlertEvent, now: float | None = None) -> dict[str, Any]:
        return build_payload(event, self.config, time.time() if now is None else now)

    def may_fold(self, event: AlertEvent) -> bool:
        return self.storms is not None or self.webhook_storms is not None

    def fold(self, events: list[AlertEvent]) -> dict[str, object] | None:
        if self.storms is not None:
            return self.storms.fold(events)
        if self.webhook_storms is not None and events:
            return self.webhook_storms.fold(self.target(events[0]), events, self._destination, self._post_digest)
        return None

    def fold_hold(self) -> Hold:
        return hold_of(self.config.fold) if self.storms is not None or self.webhook_storms is not None else NO_HOLD

    def _channel(self, event: AlertEvent) -> str:
        # An escalation step names the contact's own channel or @user; otherwise the configured override.
        return (event.contact.address if event.contact is not None else None) or self.config.channel or ""

    def _destination(self, event: AlertEvent) -> str:
        return f"{self.target(event)}:{self._channel(event)}"

    def _post_digest(self, destination: str, view: PartView) -> None:
        from workers.conversations import digest

        assert self.config.url is not None
        payload: dict[str, Any] = {"text": digest.mattermost_digest(view, self.config)}
        channel = self._channel(view.lines[0].event)
        if channel:
            payload["channel"] = channel
        if self.config.username:
            payload["username"] = self.config.username
        if self.config.icon_url:
            payload["icon_url"] = self.config.icon_url
        self.http.post_json(self.config.url.get_secret_value(), payload)

    def send(self, event: AlertEvent, body: bytes | None = None) -> None:
        if self.conversations is not None:
            self.conversations.deliver(event)
            return
        assert self.config.url is not None  # ChannelSettings.problem, checked in __init__
        url = self.config.url.get_secret_value()
        target = self.target(event)

        def post() -> None:
            if self.webhook_storms is not None:
                self.webhook_storms.rule.pace(target)
            self.http.post_json(url, self.payload(event))

        if self.folds is None:
            post()
            return
        self.folds.post(self._destination(event), event, post)

    def close(self) -> None:
        self.http.close()
        for part in (self.conversations, self.folds):
            if part is not None:
                part.close()


def build_payload(
    event: AlertEvent, settings: MattermostSettings, now: float, *, acknowledged: bool | None = None
) -> dict[str, Any]:
    notice = render(event, settings.ui_base_url)
    attachment: dict[str, Any] = {
        "fallback": no_mentions(notice.title),
        "color": notice.color,
        "text": _text(notice),
        "fields": [
            {"title": f.label, "value": escape(clip(f.value, FIELD_LIMIT)), "short": f.short} for f in notice.facts
        ],
        "footer": f"alertq · {notice.when}",
    }
    actions = actions_for(event, settings, now, acknowledged=acknowledged)
    if actions:
        attachment["actions"] = actions
    payload: dict[str, Any] = {"text": "", "attachments": [attachment]}
    # An escalation step names the contact's own channel or @user; otherwise the configured override.
    channel = (event.contact.address if event.contact is not None else None) or settings.channel
    if channel:
        payload["channel"] = channel
    if settings.username:
        payload["username"] = settings.username
    if settings.icon_url:
        payload["icon_url"] = settings.icon_url
    return payload


def _text(notice: Notice) -> str:
    name = escape(notice.label)
    if notice.url:
        name = f"[{name}]({link_target(notice.url)})"
    lines = [f"{notice.emoji} **{escape(notice.notification_type)}**: {name} is **{notice.state}**"]
    if notice.summary_adds:
        lines.append(escape(notice.summary))
    if notice.output:
        lines.append(escape(clip(notice.output, OUTPUT_LIMIT)))
    if notice.long_output:
        lines.append(escape(clip(notice.long_output, OUTPUT_LIMIT)))
    if notice.escalation:
        lines.append(f"*{escape(notice.escalation)}*")
    if notice.fallback:
        lines.append(f"*{escape(notice.fallback)}*")
    return "\n".join(lines)


def actions_for(
    event: AlertEvent, settings: MattermostSettings, now: float, *, acknowledged: bool | None = None
) -> list[dict[str, Any]]:
    """The attachment's buttons (workers/channels/buttons.py); the action itself is in the signed token."""
    actions = []
    for button in buttons_for(event, settings, now, acknowledged=acknowledged):  # secret checked in __init__
        action: dict[str, Any] = {"id": button.key, "name": button.label}
        if button.style:
            action["style"] = button.style
        action["integration"] = {"url": settings.ack_url, "context": {"action": button.key, "token": button.token}}
        actions.append(action)
    return actions


def _url_hash(settings: MattermostSettings) -> str:
    url = settings.url.get_secret_value() if settings.url else ""
    return hashlib.sha256(url.encode()).hexdigest()[:12]
