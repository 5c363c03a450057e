"""A button click on the page, sent to the listener exactly as the chat would send it.

Mattermost: JSON `{user_id, user_name, channel_id, channel_name, team_id, team_domain, post_id,
trigger_id, type, context}` to the action's `integration.url`; the answer's `update` replaces the
post (`props: {}` clears its attachments and buttons, no `props` keeps them), `ephemeral_text` is
shown to the clicker only. Slack: form `payload=<block_actions JSON>` to the app's interactivity URL
(`sink.slack_actions_url`), signed like Slack when a signing secret is set; the listener answers
through `response_url`, which points back at this sink (app.py: /hooks/slack-response/…).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import structlog
from starlette.concurrency import run_in_threadpool

from alertq.sink.render import Button
from alertq.sink.store import Message
from schemas.sink import SinkSettings

log = structlog.get_logger("alertq.sink")

TEAM_ID = "tsinkteam0000000000000000a"
CHANNEL_ID = "csinkchannel00000000000000"


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


async def click(message: Message, key: str, user_name: str, settings: SinkSettings) -> dict[str, Any]:
    button = find_button(message, key)
    if message.channel == "mattermost":
        return await _mattermost(message, button, user_name, settings)
    if message.channel == "slack":
        return await _slack(message, button, user_name, settings)
    raise ActionFailed(409, f"{message.channel} messages have no buttons to click")


async def _mattermost(message: Message, button: Button, user_name: str, settings: SinkSettings) -> dict[str, Any]:
    integration = button.action.get("integration")
    url = integration.get("url") if isinstance(integration, dict) else None
    if not isinstance(url, str) or not url:
        raise ActionFailed(409, f"button {button.key!r} has no integration.url")
    assert isinstance(integration, dict)
    body = {
        "user_id": _user_id(user_name),
        "user_name": user_name,
        "channel_id": CHANNEL_ID,
        "channel_name": message.hook,
        "team_id": TEAM_ID,
        "team_domain": "alertq-sink",
        "post_id": _post_id(message),
        "trigger_id": secrets.token_hex(16),
        "type": "button",
        "context": integration.get("context") or {},
    }
    response = await _post(url, settings, json=body)
    answer = _json_answer(response)
    update = answer.get("update")
    if isinstance(update, dict):
        message.replace_payload(_apply_update(message.payload, update), f"@{user_name} clicked {button.label}")
    if isinstance(answer.get("ephemeral_text"), str):
        message.notes.append(f"(only visible to @{user_name}) {answer['ephemeral_text']}")
    return {"status": response.status_code, "answer": answer}


def _apply_update(payload: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Mattermost's rules: `message` replaces the text; `props` present replaces every prop
    (attachments live in props), `{}` clearing them; `props` absent keeps them."""
    new = dict(payload)
    if isinstance(update.get("message"), str):
        new["text"] = update["message"]
    if "props" in update:
        props = update["props"] if isinstance(update["props"], dict) else {}
        new.pop("attachments", None)
        new.pop("props", None)
        if props.get("attachments"):
            new["attachments"] = props["attachments"]
        others = {k: v for k, v in props.items() if k != "attachments"}
        if others:
            new["props"] = others
    return new


async def _slack(message: Message, button: Button, user_name: str, settings: SinkSettings) -> dict[str, Any]:
    if not settings.slack_actions_url:
        raise ActionFailed(
            409, "no Slack interactivity URL: set sink.slack_actions_url (ALERTQ_SINK__SLACK_ACTIONS_URL)"
        )
    ts = _slack_ts(message)
    action = button.action
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": _user_id(user_name), "username": user_name, "name": user_name, "team_id": "TSINK"},
        "api_app_id": "ASINK",
        "token": "alertq-sink",
        "container": {"type": "message", "message_ts": ts, "channel_id": "CSINK", "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.{secrets.token_hex(8)}",
        "team": {"id": "TSINK", "domain": "alertq-sink"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": "CSINK", "name": message.hook},
        "message": {**message.payload, "type": "message", "ts": ts},
        "state": {"values": {}},
        "response_url": f"{settings.public_url()}/hooks/slack-response/{message.id}/{message.response_token}",
        "actions": [
            {
                "type": action.get("type", "button"),
                "action_id": action.get("action_id", button.key),
                "block_id": button.block_id or "",
                "text": action.get("text") or {"type": "plain_text", "text": button.label},
                "value": action.get("value", ""),
                "style": action.get("style"),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if settings.slack_signing_secret is not None:
        headers.update(slack_signature(settings.slack_signing_secret.get_secret_value(), body.encode()))
    response = await _post(settings.slack_actions_url, settings, data=body, headers=headers)
    message.notes.append(f"@{user_name} clicked {button.label}")
    return {"status": response.status_code, "answer": response.text[:1000]}


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
    # Mattermost post ids are 26 characters; this one still names the sink's message.
    return f"sinkpost{message.id}".ljust(26, "0")


def _slack_ts(message: Message) -> str:
    received = datetime.fromisoformat(message.received_at.replace("Z", "+00:00"))
    return f"{received.timestamp():.6f}"
