"""A visible "acknowledgement failed" in the chat the click came from: a failed ack is never silent.

Slack: the click's `response_url` (a new message in the channel, the original stays). Mattermost:
the mattermost channel's incoming webhook into the post's channel (Mattermost's click gives no URL
to answer later). Best effort: the ack is in the dead letters either way; a reply that cannot be
sent is logged.
"""

from __future__ import annotations

from typing import Any

import requests
import structlog

from ack_listener.chat_api import ChatApis
from schemas.ack import AckMessage
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack_forwarder")

TIMEOUT = 5.0


def failure_text(ack: AckMessage, reason: str) -> str:
    what = ack.host_id if ack.service_id is None else f"{ack.host_id}/{ack.service_id}"
    return (
        f":warning: The acknowledgement of {what} by @{ack.chat_user} did NOT reach the monitoring core "
        f"({reason}). Please acknowledge it in the core directly."
    )


def tell_failure(settings: Settings, ack: AckMessage, reason: str) -> bool:
    """True when a chat accepted the message."""
    text = failure_text(ack, reason)
    told = ChatApis(settings).tell(ack, text)  # API mode: a reply in the clicked post's thread
    if told is not None:
        return told
    url: str | None = None
    body: dict[str, Any]
    if ack.source == "slack" and ack.reply.response_url:
        url, body = ack.reply.response_url, {"response_type": "in_channel", "replace_original": False, "text": text}
    elif ack.source == "mattermost" and settings.channels.mattermost.url is not None:
        url, body = settings.channels.mattermost.url.get_secret_value(), {"text": text}
        if ack.reply.channel_name:
            body["channel"] = ack.reply.channel_name
    if url is None:
        log.warning("ack_forwarder.no_chat_reply", ack_id=ack.ack_id, source=ack.source)
        return False
    try:
        requests.post(url, json=body, timeout=TIMEOUT).raise_for_status()
    except requests.RequestException as exc:
        # The URL is a secret (webhook key, response_url token): name only the kind of error.
        log.warning("ack_forwarder.chat_reply_failed", ack_id=ack.ack_id, error=type(exc).__name__)
        return False
    log.info("ack_forwarder.chat_told", ack_id=ack.ack_id, source=ack.source)
    return True
