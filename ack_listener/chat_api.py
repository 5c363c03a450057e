"""Acknowledgements in API mode (a chat channel with a bot token): the chat is told through the same API
clients the workers post with (delivery/chat/), not through a second HTTP path.

- Mattermost click: the answer's `update` still replaces the post (the chat applies it), but it is the
  post as it is, read with the API, its button removed and a line added saying who acknowledged: the
  conversation's root keeps its content. Today's answer (the text alone) is kept for webhook posts.
- Slack click: chat.update of the clicked message (its channel and ts come with the click), its blocks
  without the button and with the same line; webhook messages are still answered through response_url.
- The forwarder's "acknowledgement failed" goes into the clicked post's thread (Mattermost
  `root_id`, Slack `thread_ts`).

The core's ACKNOWLEDGEMENT notification then edits the root once more from the conversation's store
(who, why) and replies in the thread.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import structlog

from delivery.chat import MattermostApi, SlackApi
from delivery.outcomes import DeliveryError
from schemas.ack import AckMessage, Reply
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack_listener")


def acknowledged_props(props: dict[str, Any], line: str) -> dict[str, Any]:
    """A post's props with every button removed and `line` added to its first attachment's text."""
    changed = copy.deepcopy(props)
    changed.pop("from_bot", None)  # the server's own mark; it keeps it
    attachments = changed.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        changed["attachments"] = [{"text": line}]
        return changed
    for attachment in attachments:
        if isinstance(attachment, dict):
            attachment.pop("actions", None)
    first = attachments[0]
    if isinstance(first, dict):
        first["text"] = f"{line}\n{first.get('text') or ''}".rstrip("\n")
    return changed


def acknowledged_blocks(blocks: list[Any], line: str) -> list[dict[str, Any]]:
    """A message's blocks without the actions block (the button) and with `line` under the header."""
    kept = [block for block in blocks if isinstance(block, dict) and block.get("type") != "actions"]
    said = {"type": "section", "text": {"type": "mrkdwn", "text": line}}
    return [*kept[:1], said, *kept[1:]]


class ChatApis:
    """The API clients of the chat channels in API mode, made on first use (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._mattermost: MattermostApi | None = None
        self._slack: SlackApi | None = None

    def mattermost(self) -> MattermostApi | None:
        config = self.settings.channels.mattermost
        if not config.api_mode or config.api_url is None or config.bot_token is None:
            return None
        with self._lock:
            if self._mattermost is None:
                self._mattermost = MattermostApi(config.api_url, config.bot_token, config.http)
            return self._mattermost

    def slack(self) -> SlackApi | None:
        config = self.settings.channels.slack
        if not config.api_mode or config.api_url is None or config.bot_token is None:
            return None
        with self._lock:
            if self._slack is None:
                self._slack = SlackApi(config.bot_token, config.http, config.api_url)
            return self._slack

    def mattermost_update(self, post_id: str | None, line: str) -> dict[str, Any] | None:
        """The `update` answering a click on post `post_id`: the post as it is, acknowledged; None when
        not in API mode or the post cannot be read (the caller answers as in webhook mode)."""
        api = self.mattermost()
        if api is None or not post_id:
            return None
        try:
            post = api.get_post(post_id)
        except DeliveryError as exc:
            log.warning("ack_listener.post_not_read", post_id=post_id, error=exc.reason)
            return None
        return {"message": post.message, "props": acknowledged_props(post.props, line)}

    def slack_acknowledged(self, channel: str, ts: str, message: dict[str, Any], line: str) -> bool:
        """chat.update of the clicked message; False when not in API mode (the caller uses
        response_url). A refused update is logged: the ack itself is queued either way."""
        api = self.slack()
        if api is None:
            return False
        blocks = message.get("blocks")
        try:
            api.update_message(
                channel, ts, line, blocks=acknowledged_blocks(blocks if isinstance(blocks, list) else [], line)
            )
        except DeliveryError as exc:
            log.warning("ack_listener.slack_update_failed", channel=channel, ts=ts, error=exc.reason)
        return True

    def tell(self, ack: AckMessage, text: str) -> bool | None:
        """Post `text` in the clicked post's thread; None when the click's chat is not in API mode or the
        click did not say where it was (the caller falls back to webhook or response_url)."""
        reply: Reply = ack.reply
        try:
            if ack.source == "mattermost":
                api = self.mattermost()
                if api is None or not reply.channel_id:
                    return None
                api.create_post(reply.channel_id, text, root_id=reply.post_id)
            else:
                slack = self.slack()
                if slack is None or not reply.channel_id:
                    return None
                slack.post_message(reply.channel_id, text, thread_ts=reply.message_ts)
        except DeliveryError as exc:
            log.warning("ack_forwarder.chat_reply_failed", ack_id=ack.ack_id, error=exc.reason)
            return False
        log.info("ack_forwarder.chat_told", ack_id=ack.ack_id, source=ack.source, through="api")
        return True
