"""A button click as Mattermost or Slack sends it, reduced to who clicked, the token and where to reply.

Pure parsing, no I/O. Anything not shaped like the chat's request is `BadClick` (answered 400 with
its message, which never repeats the token). A user name with nothing left once the core's field
separators, line breaks, spaces and invisible characters are taken out is refused too: the core would
record an acknowledgement with an empty author.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard
from urllib.parse import parse_qs

from cores.nagios import neutralise
from schemas.ack import Reply

SLACK_ACTION_ID_PREFIX = "alertq_"  # workers/channels/slack.py: alertq_ack, alertq_snooze0, alertq_recheck, …
# A digest's "Acknowledge all N" button and its menu of lines (workers/conversations/digest.py).
SLACK_DIGEST_ACTION_ID = "alertq_ack_digest"
SLACK_ITEM_ACTION_ID = "alertq_ack_item"  # a menu: its token is the selected option's value
# Mattermost: the digest's message menu says so in its integration context ("action"); the server adds
# the chosen option's value (the line's token) to that context as "selected_option".
MATTERMOST_ITEM_ACTION = "ackitem"


class BadClick(Exception):
    """The request is not a well-formed button click; the message says what is wrong."""


@dataclass(frozen=True)
class Click:
    source: Literal["mattermost", "slack"]
    chat_user: str
    token: str
    reply: Reply
    message: dict[str, Any] | None = None  # Slack: the clicked message as the click shows it (its blocks)


def mattermost(body: bytes) -> Click:
    """`{user_name, context: {token}, channel_name, post_id, …}` as Mattermost POSTs it; a digest's
    menu: `context: {action: "ackitem", selected_option: <token>}`."""
    data = _json_object(body, "the body")
    user = data.get("user_name")
    if not _is_text(user):
        raise BadClick("user_name is missing or not a string")
    context = data.get("context")
    if not isinstance(context, dict):
        raise BadClick("context is missing or not an object")
    # The token is verified either way; the menu's mark only says where Mattermost put it.
    field = "selected_option" if context.get("action") == MATTERMOST_ITEM_ACTION else "token"
    token = context.get(field)
    if not _is_text(token):
        raise BadClick(f"context.{field} is missing or not a string")
    reply = Reply(
        channel_name=_optional_text(data, "channel_name"),
        post_id=_optional_text(data, "post_id"),
        channel_id=_optional_text(data, "channel_id"),
    )
    return Click("mattermost", _named(user, "user_name"), token, reply)


def slack(body: bytes) -> Click:
    """Form `payload=<block_actions JSON>` as Slack's interactivity POSTs it."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise BadClick("the body is not a URL-encoded form") from None
    payloads = form.get("payload")
    if not payloads or len(payloads) != 1:
        raise BadClick("the form has no single payload field")
    data = _json_object(payloads[0].encode(), "payload")
    if data.get("type") != "block_actions":
        raise BadClick(f"payload.type {data.get('type')!r} is not block_actions")
    user = data.get("user")
    name = user.get("username") or user.get("name") if isinstance(user, dict) else None
    if not _is_text(name):
        raise BadClick("payload.user.username is missing")
    actions = data.get("actions")
    if not isinstance(actions, list):
        raise BadClick("payload.actions is missing or not a list")
    # The action is in the signed token; the action_id only says the button is one of alertq's.
    tokens = [
        a.get("value")
        for a in actions
        if isinstance(a, dict)
        and isinstance(a.get("action_id"), str)
        and a["action_id"].startswith(SLACK_ACTION_ID_PREFIX)
        and a["action_id"] != SLACK_ITEM_ACTION_ID
    ]
    tokens += [
        a["selected_option"].get("value")
        for a in actions
        if isinstance(a, dict)
        and a.get("action_id") == SLACK_ITEM_ACTION_ID
        and isinstance(a.get("selected_option"), dict)
    ]
    if len(tokens) != 1 or not _is_text(tokens[0]):
        raise BadClick(f"payload.actions has no single {SLACK_ACTION_ID_PREFIX}… action with a value")
    response_url = data.get("response_url")
    channel = data.get("channel")
    message = data.get("message")
    message = message if isinstance(message, dict) else None
    reply = Reply(
        response_url=response_url if _is_text(response_url) else None,
        channel_id=_optional_text(channel, "id") if isinstance(channel, dict) else None,
        message_ts=_optional_text(message, "ts") if message is not None else None,
    )
    return Click("slack", _named(name, "payload.user.username"), tokens[0], reply, message)


def _named(user: str, field: str) -> str:
    """The user name, if it names someone once neutralised as the core's author field is."""
    visible = [c for c in neutralise(user) if unicodedata.category(c)[0] not in "CZ"]  # controls, format, spaces
    if not visible:
        raise BadClick(f"{field} is empty once ';', line breaks and blanks are taken out: nobody to record as author")
    return user


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadClick(f"{what} is not JSON") from None
    except RecursionError:  # e.g. 30 000 nested brackets, well inside the body limit
        raise BadClick(f"{what} is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadClick(f"{what} is not a JSON object")
    return data


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if _is_text(value) else None


def _is_text(value: object) -> TypeGuard[str]:
    """A non-empty string that is valid Unicode. JSON escapes can carry lone surrogates (\\ud800),
    which no message, log line or answer can encode: such a field counts as missing."""
    if not isinstance(value, str) or not value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
