"""Slack: an incoming-webhook post in Block Kit, the same texts as every channel.

`text` is the notification's title (what notifications and screen readers show), `blocks` carry a
header, the summary and plugin output, fields and a context line with the time; an attachment adds
openITCOCKPIT's state colour as a bar. With `two_way`, problems get an "Acknowledge" button
(`action_id` `alertq_ack`, `value` the signed token) that Slack's interactivity sends to the ack
listener. Slack answers 200 `ok`, or an error string: most are permanent (the webhook or channel is
gone, the payload is wrong), 429 and 5xx are worth retrying.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from delivery.http import HttpClient
from schemas.alert import AlertEvent
from schemas.channels import ChannelSettings, SlackSettings
from workers.channels.base import Notifier
from workers.channels.buttons import buttons_for
from workers.folds import NO_HOLD, Hold, hold_of
from workers.render import Notice, clip, render

ACK_ACTION_ID = "alertq_ack"
ACTION_ID_PREFIX = "alertq_"  # every button's action_id; the action itself is in its signed token
# Block Kit limits: header text 150, section text 3000, field text 2000, at most 10 fields.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10

# Error bodies that no retry will fix (Slack's incoming-webhook errors); `rollup_error` and 5xx are
# Slack's own trouble and retryable, as `classify` does for any 5xx.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_payload",
        "no_text",
        "user_not_found",
        "action_prohibited",
        "invalid_token",
        "channel_not_found",
        "no_service",
        "no_service_id",
        "no_team",
        "team_not_found",
        "channel_is_archived",
        "team_disabled",
        "posting_to_general_channel_denied",
        "too_many_attachments",
        "invalid_blocks",
        "invalid_blocks_format",
    }
)

if TYPE_CHECKING:  # digest.py imports this module
    from workers.conversations.digest import PartView


def escape(text: str) -> str:
    """Slack mrkdwn: `&`, `<`, `>` are the only characters Slack requires escaped; with them escaped,
    output cannot form links or `<!channel>` mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int, markup: Callable[[str], str] = escape) -> str:
    """`markup(text)` cut so that the marked-up text stays within `limit` (escaping makes text longer)."""
    budget = limit
    while budget > 0:
        marked = markup(clip(text, budget))
        if len(marked) <= limit:
            return marked
        # Shrink in proportion to the overshoot: escaping can make text several times longer.
        budget = min(budget - 1, budget * limit // len(marked))
    return ""


class SlackNotifier(Notifier):
    name = "slack"

    def __init__(self, settings: ChannelSettings) -> None:
        super().__init__(settings)
        if not isinstance(settings, SlackSettings):
            raise TypeError("SlackNotifier needs SlackSettings")
        self.config = settings
        self.http = HttpClient(settings.http, user_agent="alertq-slack")
        # Slack rate-limits per webhook; the URL is a secret, so the key is a short hash of it (made once:
        # it is asked several times per delivery).
        url = settings.url.get_secret_value() if settings.url else ""
        self._webhook_target = f"slack:{hashlib.sha256(url.encode()).hexdigest()[:12]}"
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
        # The API client keeps to Slack's limits per channel; webhook mode's storm rule to the webhook's.
        return self.conversations is not None or self.webhook_storms is not None

    def payload(self, event: AlertEvent, now: float | None = None) -> dict[str, Any]:
        return build_payload(event, self.config, time.time() if now is None else now)

    def may_fold(self, event: AlertEvent) -> bool:
        return self.storms is not None or self.webhook_storms is not None

    def fold(self, events: list[AlertEvent]) -> dict[str, object] | None:
        if self.storms is not None:
            return self.storms.fold(events)
        if self.webhook_storms is not None and events:
            # A Slack app's webhook posts to its own channel whatever the payload says: one destination.
            return self.webhook_storms.fold(
                self.target(events[0]), events, lambda e: f"{self.target(e)}:", self._post_digest
            )
        return None

    def fold_hold(self) -> Hold:
        return hold_of(self.config.fold) if self.storms is not None or self.webhook_storms is not None else NO_HOLD

    def _post_digest(self, destination: str, view: PartView) -> None:
        from workers.conversations import digest

        shown = digest.slack_digest(view, self.config, digest.WEBHOOK_CONTEXT)
        assert self.config.url is not None
        payload = {"text": shown.text, "blocks": shown.blocks}
        self.http.post_json(self.config.url.get_secret_value(), payload, permanent_bodies=PERMANENT_ERRORS)

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
            self.http.post_json(url, self.payload(event), permanent_bodies=PERMANENT_ERRORS)

        if self.folds is None:
            post()
            return
        # A Slack app's webhook posts to its own channel whatever the payload says: the URL is the destination.
        self.folds.post(f"{target}:", event, post)

    def close(self) -> None:
        self.http.close()
        for part in (self.conversations, self.folds):
            if part is not None:
                part.close()


def build_payload(
    event: AlertEvent, settings: SlackSettings, now: float, *, acknowledged: bool | None = None
) -> dict[str, Any]:
    notice = render(event, settings.ui_base_url)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(f"{notice.emoji} {notice.title}", HEADER_LIMIT), "emoji": True},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _headline(notice)}},
    ]
    body = "\n".join(part for part in (notice.output, notice.long_output) if part)
    if body:
        # verbatim: plugin output is shown as written, no auto-linking of URLs or #channel names.
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": fit(body, SECTION_LIMIT), "verbatim": True}}
        )
    blocks.append(
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{f.label}*\n" + fit(f.value, FIELD_LIMIT - len(f.label) - 4)}
                for f in notice.facts[:MAX_FIELDS]
            ],
        }
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _context(notice)}]})
    actions = actions_block(event, settings, now, acknowledged=acknowledged)
    if actions is not None:
        blocks.append(actions)
    # `text` (what notifications show) is parsed as mrkdwn too: a name must not make a <!channel>.
    fallback = escape(notice.title)
    payload: dict[str, Any] = {
        "text": fallback,
        "blocks": blocks,
        # The colour bar openITCOCKPIT users know; the blocks above carry all the content.
        "attachments": [{"color": notice.color, "fallback": fallback, "text": ""}],
    }
    if event.contact is not None and event.contact.address:
        # An escalation step's contact channel. Legacy webhooks post there; a Slack app's webhook is
        # bound to its own channel and ignores the field.
        payload["channel"] = event.contact.address
    return payload


def _headline(notice: Notice) -> str:
    name = escape(notice.label)
    if notice.url:
        name = f"<{escape(notice.url).replace('|', '%7C')}|{name}>"
    line = f"*{escape(notice.notification_type)}*: {name} is *{notice.state}*"
    if notice.summary_adds:
        line += "\n" + escape(notice.summary)
    if notice.escalation:
        line += f"\n_{escape(notice.escalation)}_"
    if notice.fallback:
        line += f"\n_{escape(notice.fallback)}_"
    return line


def _context(notice: Notice) -> str:
    # Slack shows the date in each reader's own time zone; the text after | is the fallback.
    return f"<!date^{notice.timestamp}^{{date_short_pretty}} {{time_secs}}|{notice.when}> · alertq"


def actions_block(
    event: AlertEvent, settings: SlackSettings, now: float, *, acknowledged: bool | None = None
) -> dict[str, Any] | None:
    """The actions block of the post's buttons (workers/channels/buttons.py), or None without any."""
    elements = []
    for button in buttons_for(event, settings, now, acknowledged=acknowledged):  # secret checked in __init__
        element: dict[str, Any] = {
            "type": "button",
            "action_id": ACK_ACTION_ID if button.action == "acknowledge" else ACTION_ID_PREFIX + button.key,
            "text": {"type": "plain_text", "text": button.label},
        }
        if button.style:
            element["style"] = button.style
        element["value"] = button.token
        elements.append(element)
    return {"type": "actions", "block_id": "alertq_actions", "elements": elements} if elements else None
