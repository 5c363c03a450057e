"""A button click on the page, sent to the listener exactly as the chat would send it.

Mattermost: JSON `{user_id, user_name, channel_id, channel_name, team_id, team_domain, post_id,
trigger_id, type, context}` to the action's `integration.url` (a message menu: `type` "select" and the
chosen option's value added to the context as `selected_option`); the answer's `update` replaces the
post (`props: {}` clears its attachments and buttons, no `props` keeps them), `ephemeral_text` is
shown to the clicker only. Slack: form `payload=<block_actions JSON>` to the app's interactivity URL
(`sink.slack_actions_url`; a `static_select` sends its `selected_option`), signed like Slack when a
signing secret is set; the listener answers through `response_url`, which points back at this sink
(app.py: /hooks/slack-response/…).

A post made through the chat APIs is clicked with its real ids (post id, channel id, ts) and its
answer edits it as the chat would (Mattermost sets edit_at when the message text changes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import structlog
from starlette.concurrency import run_in_threadpool

from alertq.sink.mattermost_api import stable_id
from alertq.sink.render import Button, MenuOption
from alertq.sink.store import Message
from schemas.sink import SinkSettings

log = structlog.get_logger("alertq.sink")

TEAM_ID = "tsinkteam0000000000000000a"
CHANNEL_ID = "csinkchannel00000000000000"
# The server's action route only matches such ids: a click on any other action fails in the chat.
MATTERMOST_ACTION_ID = re.compile(r"^[A-Za-z0-9]+$")


class ActionFailed(Exception):
    """The click could not be delivered or was refused; `status` is what the sink's API answers."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def find_button(message: Message, key: str) -> Button:
    for button in message.rendered.buttons:
        if button.key == key:
            if not button.interactive:
                raise ActionFailed(409, f"button {key!r} is a link or has no integration; it posts nothing")
            return button
    raise ActionFailed(404, f"message {message.id} has no button {key!r}")


def chosen_option(button: Button, selected: str | None) -> MenuOption | None:
    """The menu option picked (its value), None for a button; the chat offers only the menu's own options."""
    if not button.options:
        if selected is not None:
            raise ActionFailed(409, f"{button.key!r} is a button, not a menu: it takes no selected_option")
        return None
    if selected is None:
        raise ActionFailed(400, f"{button.key!r} is a menu: pick one of its options (selected_option)")
    for option in button.options:
        if option.value == selected:
            return option
    raise ActionFailed(409, f"menu {button.key!r} has no such option")


async def click(
    message: Message, key: str, user_name: str, settings: SinkSettings, selected: str | None = None
) -> dict[str, Any]:
    button = find_button(message, key)
    option = chosen_option(button, selected)
    if message.channel == "mattermost":
        return await _mattermost(message, button, user_name, settings, option)
    if message.channel == "slack":
        return await _slack(message, button, user_name, settings, option)
    raise ActionFailed(409, f"{message.channel} messages have no buttons to click")


async def _mattermost(
    message: Message, button: Button, user_name: str, settings: SinkSettings, option: MenuOption | None = None
) -> dict[str, Any]:
    integration = button.action.get("integration")
    url = integration.get("url") if isinstance(integration, dict) else None
    if not isinstance(url, str) or not url:
        raise ActionFailed(409, f"button {button.key!r} has no integration.url")
    assert isinstance(integration, dict)
    if not MATTERMOST_ACTION_ID.match(str(button.action.get("id") or "")):
        raise ActionFailed(
            409,
            f"Mattermost cannot route a click on action id {button.action.get('id')!r}: ids must match [A-Za-z0-9]+",
        )
    team, channel_id, channel_name = "alertq-sink", CHANNEL_ID, message.hook
    if message.api is not None:
        channel_id = message.api.channel_id
        team, _, channel_name = message.api.channel_name.rpartition("/")
    body = {
        "user_id": _user_id(user_name),
        "user_name": user_name,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "team_id": stable_id("team", team) if message.api is not None else TEAM_ID,
        "team_domain": team,
        "post_id": _post_id(message),
        "trigger_id": secrets.token_hex(16),
        "type": "button",
        "context": integration.get("context") or {},
    }
    note = f"@{user_name} clicked {button.label}"
    if option is not None:
        # A message menu: the server adds the chosen option's value to the integration's context.
        context = integration.get("context")
        given = context if isinstance(context, dict) else {}
        body.update(type="select", data_source="", context={**given, "selected_option": option.value})
        note = f"@{user_name} chose {option.text} in {button.label}"
    response = await _post(url, settings, json=body)
    answer = _json_answer(response)
    update = answer.get("update")
    if isinstance(update, dict) and message.api is not None:
        _apply_api_update(message, update, note)
    elif isinstance(update, dict):
        message.replace_payload(_apply_update(message.payload, update), note)
    if isinstance(answer.get("ephemeral_text"), str):
        message.notes.append(f"(only visible to @{user_name}) {answer['ephemeral_text']}")
    return {"status": response.status_code, "answer": answer}


def _apply_update(payload: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Mattermost's rules: `message` replaces the text; an object in `props` replaces every prop
    (attachments live in props), `{}` clearing them; `props` absent or null keeps them."""
    new = dict(payload)
    if isinstance(update.get("message"), str):
        new["text"] = update["message"]
    if isinstance(update.get("props"), dict):
        props = update["props"]
        new.pop("attachments", None)
        new.pop("props", None)
        if props.get("attachments"):
            new["attachments"] = props["attachments"]
        others = {k: v for k, v in props.items() if k != "attachments"}
        if others:
            new["props"] = others
    return new


def _apply_api_update(message: Message, update: dict[str, Any], note: str) -> None:
    """The same rules on a post made through the API, kept in the API's shape."""
    assert message.api is not None
    native = dict(message.api.native)
    if isinstance(update.get("message"), str) and update["message"] != native.get("message"):
        native["message"] = update["message"]
        native["edit_at"] = int(time.time() * 1000)
    if isinstance(update.get("props"), dict):
        native["props"] = {**update["props"], "from_bot": "true"}
    native["update_at"] = int(time.time() * 1000)
    message.api.native = native
    message.api.edited = native.get("edit_at", 0) != 0
    message.replace_payload({"message": native.get("message", ""), "props": native.get("props", {})}, note)


def apply_slack_replacement(message: Message, answer: dict[str, Any]) -> None:
    """response_url with replace_original: the message's text, blocks and attachments are the answer's."""
    replaced: dict[str, Any] = {k: answer[k] for k in ("text", "blocks", "attachments") if k in answer}
    if message.api is not None:
        kept = {k: v for k, v in message.api.native.items() if k not in ("text", "blocks", "attachments")}
        message.api.native = {**kept, **replaced}
    message.replace_payload(replaced, "replaced by the listener through response_url")


async def _slack(
    message: Message, button: Button, user_name: str, settings: SinkSettings, option: MenuOption | None = None
) -> dict[str, Any]:
    if not settings.slack_actions_url:
        raise ActionFailed(
            409, "no Slack interactivity URL: set sink.slack_actions_url (ALERTQ_SINK__SLACK_ACTIONS_URL)"
        )
    ts = _slack_ts(message)
    channel = {"id": "CSINK", "name": message.hook}
    shown: dict[str, Any] = {**message.payload, "type": "message", "ts": ts}
    if message.api is not None:
        channel = {"id": message.api.channel_id, "name": message.api.channel_name.lstrip("#@")}
        shown = dict(message.api.native)
    action = button.action
    clicked: dict[str, Any] = {
        "type": action.get("type", "button"),
        "action_id": action.get("action_id", button.key),
        "block_id": button.block_id or "",
        "text": action.get("text") or {"type": "plain_text", "text": button.label},
        "value": action.get("value", ""),
        "style": action.get("style"),
        "action_ts": f"{time.time():.6f}",
    }
    note = f"@{user_name} clicked {button.label}"
    if option is not None:  # a static_select: the chosen option instead of a value
        picked = next(o for o in _options(action) if o.get("value") == option.value)
        clicked = {
            "type": "static_select",
            "action_id": clicked["action_id"],
            "block_id": clicked["block_id"],
            "selected_option": picked,
            "placeholder": action.get("placeholder"),
            "action_ts": clicked["action_ts"],
        }
        note = f"@{user_name} chose {option.text} in {button.label}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": _user_id(user_name), "username": user_name, "name": user_name, "team_id": "TSINK"},
        "api_app_id": "ASINK",
        "token": "alertq-sink",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel["id"], "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.{secrets.token_hex(8)}",
        "team": {"id": "TSINK", "domain": "alertq-sink"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": channel,
        "message": shown,
        "state": {"values": {}},
        "response_url": f"{settings.public_url()}/hooks/slack-response/{message.id}/{message.response_token}",
        "actions": [clicked],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if settings.slack_signing_secret is not None:
        headers.update(slack_signature(settings.slack_signing_secret.get_secret_value(), body.encode()))
    response = await _post(settings.slack_actions_url, settings, data=body, headers=headers)
    message.notes.append(note)
    return {"status": response.status_code, "answer": response.text[:1000]}


def _options(action: dict[str, Any]) -> list[dict[str, Any]]:
    options = action.get("options")
    return [o for o in options if isinstance(o, dict)] if isinstance(options, list) else []


def slack_signature(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


async def _post(url: str, settings: SinkSettings, **kwargs: Any) -> requests.Response:
    where = _where(url)
    try:
        # In a thread, so the loop keeps serving: a Slack listener calls response_url before it answers.
        response: requests.Response = await run_in_threadpool(
            requests.post, url, timeout=settings.action_timeout, allow_redirects=False, **kwargs
        )
    except requests.RequestException as exc:
        log.warning("sink.action_failed", target=where, error=type(exc).__name__)
        raise ActionFailed(502, f"could not reach the listener at {where}: {type(exc).__name__}") from None
    log.info("sink.action_sent", target=where, status=response.status_code)
    if not 200 <= response.status_code < 300:
        raise ActionFailed(502, f"the listener at {where} answered {response.status_code}: {response.text[:200]}")
    return response


def _json_answer(response: requests.Response) -> dict[str, Any]:
    if not response.content.strip():
        return {}
    try:
        answer = response.json()
    except ValueError:
        raise ActionFailed(502, f"the listener answered {response.status_code} with a body that is not JSON") from None
    return answer if isinstance(answer, dict) else {}


def _where(url: str) -> str:
    """Scheme, host and port only: integration URLs may carry API keys in the path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _user_id(user_name: str) -> str:
    return hashlib.sha256(user_name.encode()).hexdigest()[:26]


def _post_id(message: Message) -> str:
    if message.api is not None:
        return message.api.chat_id
    # Mattermost post ids are 26 characters; this one still names the sink's message.
    return f"sinkpost{message.id}".ljust(26, "0")


def _slack_ts(message: Message) -> str:
    if message.api is not None:
        return message.api.chat_id
    received = datetime.fromisoformat(message.received_at.replace("Z", "+00:00"))
    return f"{received.timestamp():.6f}"
