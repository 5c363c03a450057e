"""The ack listener's HTTP app: a click → verified → `alertq.ack` confirmed by the broker → answer.

Buttons: Acknowledge, Snooze (one button per choice), Recheck now, Unacknowledge; the action is in the
signed token, never in the request around it. Each action has its own allow-list
(`AckListenerSettings.may`). The answer says the action was sent and waits for the core: the forwarder
reads the core back and tells the chat once it shows the action applied (ack_listener/proof.py).

Order matters: body size, shape (a user name that names nobody is one), the chat's own signature
(Slack), the button's signed token, the allow-list; then the button's problem: when the listener can
ask the core (`[ack_target]`, within `problem_check_timeout`), a button for an earlier problem, or for
one that has recovered, is answered so and not forwarded. Then the claim in the shared state store
(`used_buttons.py`): a repeated click is answered "already acknowledged by …" and not forwarded. Only
then is anything published, and the chat is told "acknowledged" only once the broker confirmed the
message. Every refusal is a one-line JSON `{"error": …}` that never repeats a secret or the token;
the answers that are no refusal (already acknowledged, earlier problem) are 200s, so the chat shows
them (Mattermost shows any other status as a bare error).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ack_listener import chat_reply, clicks
from ack_listener.chat_api import ChatApis
from ack_listener.digest_lines import DigestLines, DigestUnavailable
from ack_listener.openapi import OPENAPI
from ack_listener.problem import Binding, Verdict, goes_ahead, judge
from ack_listener.publisher import AckPublisher, BrokerUnavailable
from ack_listener.used_buttons import StoreUnavailable, UsedButtons, claim_key
from cores import make_target
from cores.base import ProblemState, Target
from schemas.ack import AckMessage
from schemas.ack_listener import AckListenerSettings, AckTargetSettings
from schemas.ack_token import (
    AckClaims,
    InvalidToken,
    is_digest_token,
    make_token,
    members_hash,
    problem_id_of,
    verify_digest_token,
    verify_token,
)
from schemas.actions import LABELS, snooze_end
from schemas.alert import AlertEvent
from schemas.settings import Settings
from state.store import AckClaim

log = structlog.get_logger("alertq.ack_listener")


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Answered:
    """How a verified click ended: `acknowledged` (queued now), `already` (clicked before), or
    `not_sent` for what the core says of the problem (`verdict`)."""

    outcome: Literal["acknowledged", "already", "not_sent"]
    chat_user: str  # who clicked: this clicker, or the one who claimed the problem first
    what: str  # host[/service], as the chat texts name it
    action: str = "acknowledge"
    snooze: str | None = None
    verdict: Verdict = Verdict.UNKNOWN

    def text(self) -> str:
        if self.outcome == "acknowledged":  # sent on: the forwarder tells once the core shows it
            return chat_reply.requested_text(self.action, self.chat_user, self.snooze)
        if self.outcome == "already":
            if self.action == "acknowledge":
                return chat_reply.already_acknowledged_text(self.chat_user)
            return f"@{self.chat_user} clicked this already; it is on its way to the monitoring core."
        return chat_reply.not_sent_text(self.verdict, self.what, self.action)


class CoreView:
    """The listener's look at the core, when `[ack_target]` is configured: the object's state, or None."""

    def __init__(self, settings: AckTargetSettings) -> None:
        self._settings = settings
        self._target: Target | None = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return self._settings.problem() is None

    def problem_state(self, host_id: str, service_id: str | None) -> ProblemState | None:
        with self._lock:
            if self._target is None:
                self._target = make_target(self._settings)
        return self._target.problem_state(host_id, service_id)


def create_app(settings: Settings, publisher: AckPublisher) -> Starlette:
    listener = settings.ack_listener
    secret = settings.ack.signing_secret
    used = UsedButtons(settings.state_store)  # opened on the first click
    core = CoreView(settings.ack_target)
    chats = ChatApis(settings)  # API mode: the chat is told through the workers' API clients
    digests = DigestLines(settings.conversations.store)  # a digest's lines, for its buttons

    async def mattermost_actions(request: Request) -> Response:
        try:
            body = await _read_body(request, listener.body_limit)
            click = clicks.mattermost(body) if body else _empty()
            answered = await _accept(click)
        except Refused as exc:
            return _refuse(exc, "mattermost")
        except clicks.BadClick as exc:
            return _refuse(Refused(400, str(exc)), "mattermost")
        if answered.action == "acknowledge" and answered.outcome in ("acknowledged", "already"):
            # API mode: the post as it is (read with the API client), its button removed, the line added;
            # a webhook post: the line alone.
            line = (
                answered.text()
                if answered.outcome == "acknowledged"
                else chat_reply.acknowledged_text(answered.chat_user)
            )
            update = await asyncio.to_thread(chats.mattermost_update, click.reply.post_id, line)
            update = update or {"message": line, "props": {}}
            if answered.outcome == "acknowledged":
                return JSONResponse({"update": update})
            # This post may be another of the same problem's: show it acknowledged, without its button.
            return JSONResponse({"update": update, "ephemeral_text": answered.text()})
        return JSONResponse({"ephemeral_text": answered.text()})

    async def slack_actions(request: Request) -> Response:
        try:
            body = await _read_body(request, listener.body_limit)
            _verify_slack(request, body)
            click = clicks.slack(body) if body else _empty()
            answered = await _accept(click)
        except Refused as exc:
            return _refuse(exc, "slack")
        except clicks.BadClick as exc:
            return _refuse(Refused(400, str(exc)), "slack")
        reply = None
        place = click.reply
        acknowledged = answered.outcome == "acknowledged" and answered.action == "acknowledge"
        if acknowledged and chats.slack() is not None and place.channel_id and place.message_ts:
            # API mode: chat.update of the message, its blocks kept without the button.
            reply = BackgroundTask(
                chats.slack_acknowledged, place.channel_id, place.message_ts, click.message or {}, answered.text()
            )
        elif click.reply.response_url:
            if acknowledged:
                answer: dict[str, Any] = {"replace_original": True, "text": answered.text()}
            else:  # only the clicker needs to know; the channel's message stays as it is
                answer = {"response_type": "ephemeral", "replace_original": False, "text": answered.text()}
            reply = BackgroundTask(chat_reply.answer_slack_click, settings, click.reply.response_url, answer)
        # Slack needs 200 within 3 s; the visible answer goes through response_url after it.
        return Response(status_code=200, background=reply)

    async def _accept(click: clicks.Click) -> Answered:
        if secret is None:
            raise Refused(503, "ack.signing_secret is not set: this listener cannot verify buttons")
        if is_digest_token(click.token):
            return await _accept_digest(click)
        try:
            claims = verify_token(secret.get_secret_value(), click.token, now=time.time())
        except InvalidToken as exc:
            raise Refused(401, f"the button's token is not valid ({exc})") from None
        action = claims.action
        if not listener.may(action, click.chat_user):
            raise Refused(403, f"user {click.chat_user!r} may not {action}")
        what = chat_reply.subject(claims.host_id, claims.service_id)
        verdict = await _verdict(claims)

        def answer(outcome: Any, chat_user: str = click.chat_user) -> Answered:
            return Answered(outcome, chat_user, what, action, claims.snooze, verdict)

        if verdict in (Verdict.EARLIER, Verdict.RECOVERED) or (
            action != "acknowledge" and not goes_ahead(action, verdict)
        ):
            log.info("ack_listener.not_forwarded", reason=verdict.value, chat_user=click.chat_user, **_ids(claims))
            return answer("not_sent")

        ack = _ack_message(click, claims, listener)
        key = claim_key(claims.host_id, claims.service_id, claims.problem_id, claims.event_id, action)
        mine = AckClaim(key, ack.ack_id, ack.chat_user, ack.source, ack.received_at)
        try:
            held = await asyncio.to_thread(used.claim, mine, claims.expires_at)
        except StoreUnavailable as exc:
            raise Refused(503, f"the acknowledgement could not be recorded, try again ({exc})") from None
        if held.ack_id != ack.ack_id:
            log.info(
                "ack_listener.already_acknowledged", chat_user=click.chat_user, first_by=held.chat_user, **_ids(claims)
            )
            return answer("already", held.chat_user)
        if (
            verdict is Verdict.ACKNOWLEDGED and action == "acknowledge"
        ):  # by someone in the core itself: nothing to send
            await asyncio.to_thread(used.release, key, ack.ack_id)
            log.info(
                "ack_listener.not_forwarded", reason="acknowledged-in-core", chat_user=click.chat_user, **_ids(claims)
            )
            return answer("not_sent")  # verdict ACKNOWLEDGED: "acknowledged in the core"

        published = publisher.submit(ack)
        try:
            await asyncio.wait_for(asyncio.wrap_future(published), listener.publish_timeout)
        except (BrokerUnavailable, TimeoutError) as exc:
            # Not queued, so the next click may try again; but a publish already under way when the wait
            # ran out (it cannot be cancelled) may yet be confirmed, and then the claim stays.
            if isinstance(exc, BrokerUnavailable) or published.cancel() or published.cancelled():
                await asyncio.to_thread(used.release, key, ack.ack_id)
            raise Refused(503, f"the acknowledgement could not be queued, try again ({exc or 'timeout'})") from None
        log.info(
            "ack_listener.accepted",
            ack_id=ack.ack_id,
            source=ack.source,
            chat_user=ack.chat_user,
            **_ids(claims),
        )
        return answer("acknowledged")

    async def _accept_digest(click: clicks.Click) -> Answered:
        """A digest's "Acknowledge all N" (or one line of it): its lines are looked up and must be the
        ones the token was signed for; then each is acknowledged as its own button would be (a v2 token
        of the line's problem, made here, through `_accept`): one `alertq.ack/1` per problem."""
        assert secret is not None
        key = secret.get_secret_value()
        try:
            claims = verify_digest_token(key, click.token, now=time.time())
        except InvalidToken as exc:
            raise Refused(401, f"the button's token is not valid ({exc})") from None
        if not listener.may("acknowledge", click.chat_user):
            raise Refused(403, f"user {click.chat_user!r} may not acknowledge")
        try:
            lines = await asyncio.to_thread(digests.part, claims.digest_id, claims.part)
        except DigestUnavailable as exc:
            raise Refused(503, f"the digest could not be read, try again ({exc})") from None
        if not lines or members_hash([(line.incident, line.event_id) for line in lines]) != claims.members:
            log.warning("ack_listener.digest_mismatch", digest=claims.digest_id, part=claims.part, lines=len(lines))
            raise Refused(401, "the button's token is not valid (it names lines this digest does not have)")
        chosen = [line for line in lines if claims.position is None or line.position == claims.position]
        answers = []
        for line in chosen:
            event = AlertEvent.model_validate_json(line.event_json)
            began = event.escalation.since if event.escalation is not None and event.escalation.since else None
            one = AckClaims(
                host_id=event.host.id,
                service_id=None if event.service is None else event.service.id,
                event_id=event.event_id,
                expires_at=claims.expires_at,
                problem_id=problem_id_of(event.problem_id),
                problem_since=int((began or event.created_at).timestamp()),
            )
            answers.append(
                await _accept(clicks.Click(click.source, click.chat_user, make_token(key, one), click.reply))
            )
        done = [a for a in answers if a.outcome == "acknowledged"]
        log.info(
            "ack_listener.digest_accepted",
            digest=claims.digest_id,
            part=claims.part,
            lines=len(chosen),
            acknowledged=len(done),
        )
        if done or not answers:
            what = answers[0].what if len(chosen) == 1 else f"{len(chosen)} problems"
            return Answered("acknowledged", click.chat_user, what)
        return answers[0]

    async def _verdict(claims: AckClaims) -> Verdict:
        """Whether the button's problem is still the core's, if this listener can ask it in time."""
        binding = Binding.of(claims.problem_id, claims.problem_since)
        if not binding.known or not core.configured:
            return Verdict.UNKNOWN
        asked = asyncio.to_thread(core.problem_state, claims.host_id, claims.service_id)
        try:
            state = await asyncio.wait_for(asked, listener.problem_check_timeout)
        except TimeoutError:
            # Slack's 3 s: the forwarder asks again before it acknowledges.
            log.warning("ack_listener.problem_check_slow", timeout=listener.problem_check_timeout, **_ids(claims))
            return Verdict.UNKNOWN
        except Exception:
            log.exception("ack_listener.problem_check_failed", **_ids(claims))
            return Verdict.UNKNOWN
        return judge(binding, state)

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


def _ids(claims: AckClaims) -> dict[str, str | int | None]:
    return {
        "host_id": claims.host_id,
        "service_id": claims.service_id,
        "event_id": claims.event_id,
        "problem_id": claims.problem_id,
        "problem_since": claims.problem_since,
        "action": claims.action,
    }


def _ack_message(click: clicks.Click, claims: AckClaims, listener: AckListenerSettings) -> AckMessage:
    names = {"user": click.chat_user, "source": click.source.capitalize()}
    since = claims.problem_since
    received_at = datetime.now(UTC)
    snooze: dict[str, Any] = {}
    comment = listener.comment_format.format(**names)
    if claims.action == "snooze":
        assert claims.snooze is not None  # verify_token checks it
        clicked = received_at.astimezone()  # "until 08:00" is the listener's local time
        end = snooze_end(claims.snooze, clicked)
        snooze = {"snooze": claims.snooze, "downtime_start": received_at, "downtime_end": end.astimezone(UTC)}
        comment = listener.snooze_comment_format.format(**names, choice=claims.snooze)
    elif claims.action != "acknowledge":
        comment = f"{LABELS[claims.action]} in {names['source']} by {click.chat_user} via alertq"
    return AckMessage(
        ack_id=str(uuid.uuid4()),
        received_at=received_at,
        source=click.source,
        chat_user=click.chat_user,
        author=listener.author_of(click.chat_user, click.source),
        comment=comment,
        action=claims.action,
        **snooze,
        kind="host" if claims.service_id is None else "service",
        host_id=claims.host_id,
        service_id=claims.service_id,
        event_id=claims.event_id,
        problem_id=claims.problem_id,
        problem_since=None if since is None else datetime.fromtimestamp(since, UTC),
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
