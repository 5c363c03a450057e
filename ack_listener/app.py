"""The ack listener's HTTP app: a click → verified → `alertq.ack/1` confirmed by the broker → answer.

Order matters: body size, shape, the chat's own signature (Slack), the button's signed token, the
allow-list; only then is anything published, and the chat is told "acknowledged" only once the broker
confirmed the message. Every refusal is a one-line JSON `{"error": …}` that never repeats a secret or
the token.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
import structlog
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ack_listener import clicks
from ack_listener.chat_api import ChatApis
from ack_listener.openapi import OPENAPI
from ack_listener.publisher import AckPublisher, BrokerUnavailable
from schemas.ack import AckMessage
from schemas.ack_listener import AckListenerSettings
from schemas.ack_token import InvalidToken, verify_token
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack_listener")

SLACK_REPLY_TIMEOUT = 5.0


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def create_app(settings: Settings, publisher: AckPublisher) -> Starlette:
    listener = settings.ack_listener
    secret = settings.ack.signing_secret
    chats = ChatApis(settings)  # API mode: the chat is told through the workers' API clients

    async def mattermost_actions(request: Request) -> Response:
        try:
            body = await _read_body(request, listener.body_limit)
            click = clicks.mattermost(body) if body else _empty()
            ack = await _accept(click, request)
        except Refused as exc:
            return _refuse(exc, "mattermost")
        except clicks.BadClick as exc:
            return _refuse(Refused(400, str(exc)), "mattermost")
        message = f"Acknowledged by @{ack.chat_user} via alertq"
        update = await asyncio.to_thread(chats.mattermost_update, ack.reply.post_id, message)
        return JSONResponse({"update": update or {"message": message, "props": {}}})

    async def slack_actions(request: Request) -> Response:
        try:
            body = await _read_body(request, listener.body_limit)
            _verify_slack(request, body)
            click = clicks.slack(body) if body else _empty()
            ack = await _accept(click, request)
        except Refused as exc:
            return _refuse(exc, "slack")
        except clicks.BadClick as exc:
            return _refuse(Refused(400, str(exc)), "slack")
        reply = None
        text = f"Acknowledged by @{ack.chat_user} via alertq"
        if chats.slack() is not None and ack.reply.channel_id and ack.reply.message_ts:
            message = click.message or {}
            reply = BackgroundTask(chats.slack_acknowledged, ack.reply.channel_id, ack.reply.message_ts, message, text)
        elif ack.reply.response_url:
            reply = BackgroundTask(_slack_reply, ack.reply.response_url, text)
        # Slack needs 200 within 3 s; the visible answer goes through response_url after it.
        return Response(status_code=200, background=reply)

    async def _accept(click: clicks.Click, request: Request) -> AckMessage:
        if secret is None:
            raise Refused(503, "ack.signing_secret is not set: this listener cannot verify buttons")
        try:
            claims = verify_token(secret.get_secret_value(), click.token, now=time.time())
        except InvalidToken as exc:
            raise Refused(401, f"the button's token is not valid ({exc})") from None
        if listener.allowed_users and click.chat_user not in listener.allowed_users:
            raise Refused(403, f"user {click.chat_user!r} may not acknowledge")
        ack = _ack_message(click, claims.host_id, claims.service_id, claims.event_id, listener)
        try:
            await asyncio.wait_for(asyncio.wrap_future(publisher.submit(ack)), listener.publish_timeout)
        except (BrokerUnavailable, TimeoutError) as exc:
            raise Refused(503, f"the acknowledgement could not be queued, try again ({exc or 'timeout'})") from None
        log.info(
            "ack_listener.accepted",
            ack_id=ack.ack_id,
            source=ack.source,
            chat_user=ack.chat_user,
            host_id=ack.host_id,
            service_id=ack.service_id,
            event_id=ack.event_id,
        )
        return ack

    def _verify_slack(request: Request, body: bytes) -> None:
        if listener.slack_signing_secret is None:
            raise Refused(503, "ack_listener.slack_signing_secret is not set: Slack clicks cannot be verified")
        verifier = SignatureVerifier(listener.slack_signing_secret.get_secret_value())
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        try:
            valid = verifier.is_valid(body, timestamp, signature)  # 5-minute window, constant-time compare
        except (ValueError, TypeError):
            # slack_sdk raises on a timestamp that is not a number (int()) and on a non-ASCII
            # signature (hmac.compare_digest): both are simply not Slack's.
            valid = False
        if not valid:
            raise Refused(401, "the Slack signature is missing, wrong or too old")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return Starlette(
        routes=[
            Route("/mattermost/actions", mattermost_actions, methods=["POST"]),
            Route("/slack/actions", slack_actions, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ]
    )


def _ack_message(
    click: clicks.Click, host_id: str, service_id: str | None, event_id: str, listener: AckListenerSettings
) -> AckMessage:
    names = {"user": click.chat_user, "source": click.source.capitalize()}
    return AckMessage(
        ack_id=str(uuid.uuid4()),
        received_at=datetime.now(UTC),
        source=click.source,
        chat_user=click.chat_user,
        author=listener.author_format.format(**names),
        comment=listener.comment_format.format(**names),
        kind="host" if service_id is None else "service",
        host_id=host_id,
        service_id=service_id,
        event_id=event_id,
        sticky=listener.sticky,
        notify=listener.notify,
        persistent=listener.persistent,
        reply=click.reply,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refused(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refused(413, f"the body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client went away, or sent too slowly and was cut off (ack_listener/request_timeout.py):
        # a refusal in the log, not a traceback; the answer reaches nobody.
        raise Refused(400, "the connection ended before the whole body arrived") from None
    return b"".join(chunks)


def _empty() -> clicks.Click:
    raise clicks.BadClick("the body is empty")


def _refuse(exc: Refused, source: str) -> Response:
    log.warning("ack_listener.refused", source=source, status=exc.status, reason=exc.reason)
    return JSONResponse({"error": exc.reason}, status_code=exc.status)


def _slack_reply(response_url: str, text: str) -> None:
    body: dict[str, Any] = {"replace_original": True, "text": text}
    try:
        answer = requests.post(response_url, json=body, timeout=SLACK_REPLY_TIMEOUT)
        answer.raise_for_status()
    except requests.RequestException as exc:
        # The ack itself is queued; only the chat's view of it is stale.
        log.warning("ack_listener.slack_reply_failed", error=type(exc).__name__)
