"""What the chat is told about an acknowledgement, and how the forwarder tells it later.

A failed ack is never silent, and neither is a button that turned out to be for an earlier problem.
Slack: the click's `response_url` (a new message in the channel, the original stays). Mattermost: the
mattermost channel's incoming webhook into the post's channel (Mattermost's click gives no URL to
answer later). Best effort: the ack is in the dead letters (or deliberately not forwarded) either way;
a reply that cannot be sent is logged.

The texts say why in words: never a path, a host name of the core or a server's answer, which stay in
the log.
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


def subject(host_id: str, service_id: str | None) -> str:
    return host_id if service_id is None else f"{host_id}/{service_id}"


def acknowledged_text(chat_user: str) -> str:
    return f"Acknowledged by @{chat_user} via alertq"


def already_acknowledged_text(chat_user: str) -> str:
    return f"Already acknowledged by @{chat_user} via alertq: nothing sent again."


def acknowledged_in_core_text(what: str) -> str:
    return f"{what} is already acknowledged in the monitoring core: nothing sent again."


def earlier_problem_text(what: str) -> str:
    return (
        f":warning: This button is for an earlier problem of {what}, which has recovered since. The current "
        "problem was NOT acknowledged: use the button of its own notification, or acknowledge it in the "
        "monitoring core."
    )


def recovered_text(what: str) -> str:
    return f"{what} has recovered since this notification: there is nothing to acknowledge."


def failure_text(ack: AckMessage, said: str) -> str:
    return (
        f":warning: The acknowledgement of {subject(ack.host_id, ack.service_id)} by @{ack.chat_user} did NOT "
        f"reach the monitoring core ({said}). Please acknowledge it in the core directly."
    )


def tell(settings: Settings, ack: AckMessage, text: str) -> bool:
    """Post `text` into the chat the click came from; True when a chat accepted it."""
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


def tell_failure(settings: Settings, ack: AckMessage, said: str) -> bool:
    """Tell the chat the ack failed, `said` being the reason in words (`targets.base.in_words`)."""
    return tell(settings, ack, failure_text(ack, said))
