"""What the ack processes tell the chat a click came from, through the chat channel's own HTTP settings.

"Acknowledged by": the ack listener replaces Slack's message through the click's `response_url` (a
Mattermost click is answered in the HTTP response itself). "Acknowledgement failed": the forwarder
makes a failed ack visible, never silent. Slack: the click's `response_url` (a new message in the
channel, the original stays). Mattermost: the mattermost channel's incoming webhook into the post's
channel (Mattermost's click gives no URL to answer later).

Each reply goes through `delivery.http.HttpClient` with `channels.<chat>.http`: its timeouts, CA bundle
and proxy, as the notifications do, so a site behind a proxy gets the replies too. Best effort: the
ack is queued (or in the dead letters) either way; a reply that cannot be sent is logged, without
the URL (a webhook key, a response_url token).
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

from delivery.http import HttpClient
from delivery.outcomes import DeliveryError
from schemas.ack import AckMessage
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack")


def acknowledged_text(chat_user: str) -> str:
    return f"Acknowledged by @{chat_user} via alertq"


def failure_text(ack: AckMessage, reason: str) -> str:
    what = ack.host_id if ack.service_id is None else f"{ack.host_id}/{ack.service_id}"
    return (
        f":warning: The acknowledgement of {what} by @{ack.chat_user} did NOT reach the monitoring core "
        f"({reason}). Please acknowledge it in the core directly."
    )


def post(settings: Settings, chat: Literal["mattermost", "slack"], url: str, body: dict[str, Any]) -> str | None:
    """POST `body` as JSON to `url` with `channels.<chat>.http`; None when the chat accepted it, else why not."""
    http = HttpClient(settings.channels.get(chat).http, user_agent=f"alertq-{chat}")
    try:
        http.post_json(url, body)
    except DeliveryError as exc:
        return exc.reason
    finally:
        http.close()
    return None


def tell_acknowledged(settings: Settings, ack: AckMessage) -> None:
    """Replace the Slack message whose button was clicked (the ack is queued already)."""
    assert ack.reply.response_url is not None
    body = {"replace_original": True, "text": acknowledged_text(ack.chat_user)}
    error = post(settings, "slack", ack.reply.response_url, body)
    if error is not None:
        # The ack itself is queued; only the chat's view of it is stale.
        log.warning("ack_listener.slack_reply_failed", ack_id=ack.ack_id, error=error)


def tell_failure(settings: Settings, ack: AckMessage, reason: str) -> bool:
    """True when a chat accepted the message."""
    text = failure_text(ack, reason)
    if ack.source == "slack" and ack.reply.response_url:
        url: str | None = ack.reply.response_url
        body: dict[str, Any] = {"response_type": "in_channel", "replace_original": False, "text": text}
    elif ack.source == "mattermost" and settings.channels.mattermost.url is not None:
        url, body = settings.channels.mattermost.url.get_secret_value(), {"text": text}
        if ack.reply.channel_name:
            body["channel"] = ack.reply.channel_name
    else:
        log.warning("ack_forwarder.no_chat_reply", ack_id=ack.ack_id, source=ack.source)
        return False
    assert url is not None
    error = post(settings, ack.source, url, body)
    if error is not None:
        log.warning("ack_forwarder.chat_reply_failed", ack_id=ack.ack_id, error=error)
        return False
    log.info("ack_forwarder.chat_told", ack_id=ack.ack_id, source=ack.source)
    return True
