"""What the chat is told about an acknowledgement, and how the ack processes tell it.

A failed ack is never silent, and neither is a button that turned out to be for an earlier problem.
"Acknowledged by": the ack listener replaces Slack's message through the click's `response_url` (a
Mattermost click is answered in the HTTP response itself). Later news from the forwarder: Slack, the
click's `response_url` (a new message in the channel, the original stays); Mattermost, the mattermost
channel's incoming webhook into the post's channel (Mattermost's click gives no URL to answer later).

Each reply goes through `delivery.http.HttpClient` with `channels.<chat>.http`: its timeouts, CA bundle
and proxy, as the notifications do, so a site behind a proxy gets the replies too. Best effort: the
ack is queued (or in the dead letters, or deliberately not forwarded) either way; a reply that cannot
be sent is logged, without the URL (a webhook key, a response_url token).

The texts say why in words: never a path, a host name of the core or a server's answer, which stay in
the log.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

from ack_listener.chat_api import ChatApis
from ack_listener.problem import Verdict
from delivery.http import HttpClient
from delivery.outcomes import DeliveryError
from schemas.ack import AckMessage
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack")


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


def recovered_text(what: str, action: str = "acknowledge") -> str:
    return f"{what} has recovered since this notification: there is nothing to {action}."


NOUNS = {
    "acknowledge": "acknowledgement",
    "snooze": "snooze",
    "recheck": "recheck",
    "unacknowledge": "unacknowledgement",
}
VERBS = {
    "acknowledge": "acknowledge it",
    "snooze": "schedule the downtime",
    "recheck": "reschedule the check",
    "unacknowledge": "remove the acknowledgement",
}


def _noun(ack: AckMessage) -> str:
    return NOUNS[ack.action]


def requested_text(action: str, chat_user: str, snooze: str | None = None) -> str:
    """The listener's answer to a click: sent on, not yet done (the forwarder says when the core shows it)."""
    what = NOUNS[action].capitalize() + (f" ({snooze})" if action == "snooze" else "")
    return f"{what} by @{chat_user} sent via alertq: waiting for the monitoring core to confirm."


def confirmed_text(ack: AckMessage) -> str:
    """What the chat is told once the core shows the action (ack_listener/proof.py)."""
    what = subject(ack.host_id, ack.service_id)
    if ack.action == "acknowledge":
        return f":white_check_mark: {what} acknowledged by @{ack.chat_user}: confirmed by the monitoring core."
    if ack.action == "snooze":
        assert ack.downtime_end is not None
        until = ack.downtime_end.astimezone().strftime("%Y-%m-%d %H:%M %Z")
        return f":zzz: {what} snoozed by @{ack.chat_user} until {until}: the monitoring core shows the downtime."
    if ack.action == "recheck":
        return f":arrows_counterclockwise: {what}: recheck by @{ack.chat_user}, the monitoring core checks it now."
    return f":leftwards_arrow_with_hook: {what}: acknowledgement removed by @{ack.chat_user}, confirmed by the core."


def unconfirmed_text(ack: AckMessage, said: str, seconds: float) -> str:
    """The core took the command but did not show it applied within `seconds`."""
    return (
        f":warning: The {_noun(ack)} of {subject(ack.host_id, ack.service_id)} by @{ack.chat_user} was sent, but "
        f"the monitoring core did NOT apply it within {seconds:g} s ({said}). Please {VERBS[ack.action]} in "
        "the core directly."
    )


def unverifiable_text(ack: AckMessage) -> str:
    """The core took the command, but alertq cannot read its state back (Nagios without status_file)."""
    return (
        f"The {_noun(ack)} of {subject(ack.host_id, ack.service_id)} by @{ack.chat_user} was sent to the monitoring "
        "core, but alertq cannot confirm it took effect (ack_target.status_file is not set): check in the core."
    )


def not_acknowledged_text(what: str) -> str:
    return f"{what} is not acknowledged in the monitoring core: there is no acknowledgement to remove."


def not_sent_text(verdict: Verdict, what: str, action: str) -> str:
    """Why a click's action was not sent to the core, by what the core said of its problem (listener and
    forwarder alike: problem.GOES_AHEAD)."""
    if verdict is Verdict.EARLIER:
        return earlier_problem_text(what)
    if verdict is Verdict.RECOVERED:
        return recovered_text(what, action)
    if verdict is Verdict.ACKNOWLEDGED:
        return acknowledged_in_core_text(what)
    return not_acknowledged_text(what)


def failure_text(ack: AckMessage, said: str) -> str:
    return (
        f":warning: The {_noun(ack)} of {subject(ack.host_id, ack.service_id)} by @{ack.chat_user} did NOT "
        f"reach the monitoring core ({said}). Please {VERBS[ack.action]} in the core directly."
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


def answer_slack_click(settings: Settings, response_url: str, body: dict[str, Any]) -> None:
    """The listener's answer to a Slack click, through its `response_url` (the ack, if any, is queued already)."""
    error = post(settings, "slack", response_url, body)
    if error is not None:
        # Only the chat's view of the click is stale.
        log.warning("ack_listener.slack_reply_failed", error=error)


def tell(settings: Settings, ack: AckMessage, text: str) -> bool:
    """Post `text` into the chat the click came from; True when a chat accepted it."""
    told = ChatApis(settings).tell(ack, text)  # API mode: a reply in the clicked post's thread
    if told is not None:
        return told
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


def tell_failure(settings: Settings, ack: AckMessage, said: str) -> bool:
    """Tell the chat the ack failed, `said` being the reason in words (`cores.base.in_words`)."""
    return tell(settings, ack, failure_text(ack, said))
