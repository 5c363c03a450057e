"""The Slack Web API subset alertq uses, answered as Slack answers it.

Methods (POST or GET /api/<method>): chat.postMessage, chat.update, auth.test, conversations.info.
Bodies as slack_sdk.WebClient sends them (JSON with `Authorization: Bearer xoxb-…`), or a form
(`application/x-www-form-urlencoded` / multipart, `blocks` and `attachments` as JSON strings, the
token as a header or a `token` field). Any other method name is `unknown_method`.

Faithful to Slack's documentation (docs.slack.dev methods, rate-limit and truncation pages):
- every answer is HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": "<code>"}`, except a
  rate limit: HTTP 429, `Retry-After: <seconds>`, `{"ok": false, "error": "ratelimited"}`;
- auth: no token `not_authed`, a refused one `invalid_auth`;
- chat.postMessage: `channel_not_found`, `not_in_channel`, `no_text`, `too_many_attachments`
  (over 100), `invalid_blocks` (over 50 blocks, a header over 150, section text over 3000, more than
  10 fields, a field over 2000, an actions block over 25 elements, a button value over 2000 — with
  Slack's `errors` list of json-pointers), `invalid_blocks_format` (not a JSON array); `text` over
  40 000 characters is cut and answered with the warning `message_truncated`; about 1 post per
  second per channel;
- `thread_ts` makes a reply; a reply's ts is taken as its root's (Slack threads only one level);
  a thread_ts that names no message is accepted, as Slack does, and the reply is shown as an orphan;
- chat.update: `message_not_found` (no message with that ts in that channel), `msg_too_long` (text
  over 4000), the same blocks checks; omitted `attachments` are kept and `[]` removes them; omitted
  `blocks` are kept only if `text` is omitted too; Tier 3 (50 per minute per token), its own budget;
- ts are "<seconds>.<6 digits>", unique and increasing within a channel; posting to a user id (U…)
  opens a direct message channel (D…), which chat.update then names.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import structlog
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alertq.sink.bodies import BadRequest, bearer_token, read_body
from alertq.sink.calls import CallLog
from alertq.sink.ratelimit import Limiter
from alertq.sink.store import ApiPost, Message, Store
from schemas.sink import SinkSlackApi

log = structlog.get_logger("alertq.sink")

TEAM_ID = "T0SINK0001"
TEAM_NAME = "alertq sink"
BOT_USER_ID = "U0SINKBOT1"
BOT_ID = "B0SINKBOT1"
APP_ID = "A0SINKAPP1"
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
MAX_ATTACHMENTS = 100
SECTION_TEXT = 3000
HEADER_TEXT = 150
FIELD_TEXT = 2000
MAX_FIELDS = 10
ACTION_ELEMENTS = 25
BUTTON_VALUE = 2000


class SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def stable_id(prefix: str, name: str) -> str:
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    return prefix + digest[:10]


@dataclass
class SlackChannel:
    id: str
    name: str
    is_im: bool = False
    user: str | None = None
    last_ts: tuple[int, int] = (0, 0)
    created: int = field(default_factory=lambda: int(time.time()))

    def next_ts(self) -> str:
        """A ts after every earlier one in this channel: wall-clock seconds, then a counter."""
        now = time.time()
        candidate = (int(now), int((now % 1) * 1_000_000))
        if candidate <= self.last_ts:
            seconds, micros = self.last_ts
            candidate = (seconds + 1, 0) if micros >= 999_999 else (seconds, micros + 1)
        self.last_ts = candidate
        return f"{candidate[0]}.{candidate[1]:06d}"

    def label(self) -> str:
        return f"@{self.user}" if self.is_im else f"#{self.name}"


class SlackWorld:
    """Channels and membership as the settings describe them. With `channels` unset every channel
    id or name exists, so a client that cached an id survives a sink restart."""

    def __init__(self, settings: SinkSlackApi) -> None:
        self.settings = settings
        self.channels: dict[str, SlackChannel] = {}
        self.configured = None if settings.channels is None else {self._id_of(c) for c in settings.channels}
        self.outside = {self._id_of(c) for c in settings.not_in_channel}
        for entry in settings.channels or []:
            self._make(entry)

    def resolve(self, given: str) -> SlackChannel | None:
        given = given.strip()
        if not given:
            return None
        if USER_ID.match(given):
            # A user id sends a direct message: Slack opens (or reuses) the DM channel and answers its D… id.
            channel_id = stable_id("D", given)
            if channel_id not in self.channels:
                self.channels[channel_id] = SlackChannel(channel_id, channel_id, is_im=True, user=given)
            return self.channels[channel_id]
        channel_id = self._id_of(given)
        if channel_id in self.channels:
            return self.channels[channel_id]
        if self.configured is not None and channel_id not in self.configured:
            return None
        return self._make(given)

    def is_member(self, channel: SlackChannel) -> bool:
        return channel.id not in self.outside

    @staticmethod
    def _id_of(given: str) -> str:
        name = given.strip().lstrip("#")
        return name if CHANNEL_ID.match(name) else stable_id("C", name.lower())

    def _make(self, given: str) -> SlackChannel:
        name = given.strip().lstrip("#")
        channel_id = self._id_of(given)
        # A channel known only by its id is named by it, as far as the sink can tell.
        channel = SlackChannel(channel_id, name)
        self.channels[channel_id] = channel
        return channel


@dataclass
class Args:
    values: dict[str, Any]
    token: str | None
    recorded: Any


Method = Callable[[Args], dict[str, Any]]


class SlackApi:
    def __init__(self, settings: SinkSlackApi, store: Store, calls: CallLog) -> None:
        self.settings = settings
        self.store = store
        self.calls = calls
        self.world = SlackWorld(settings)
        self.post_limiter = Limiter(settings.post_rate_limit)
        self.update_limiter = Limiter(settings.update_rate_limit)
        self.tokens = {t.get_secret_value() for t in settings.tokens}
        self.methods: dict[str, Method] = {
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "auth.test": self.auth_test,
            "conversations.info": self.conversations_info,
            "conversations.history": self.conversations_history,
        }
        self._history: dict[str, list[dict[str, Any]]] = {}  # channel id → its roots, oldest first

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/{method}", self.endpoint, methods=["GET", "POST"])]

    # --- the methods -------------------------------------------------------------------------------

    def post_message(self, args: Args) -> dict[str, Any]:
        channel = self._channel(args)
        if not self.world.is_member(channel):
            raise SlackError("not_in_channel")
        self._rate(self.post_limiter, f"post:{channel.id}")
        text = _text_arg(args.values.get("text"))
        blocks = _json_arg(args.values, "blocks")
        attachments = _json_arg(args.values, "attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        if attachments is not None and len(attachments) > MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")
        if blocks is not None:
            self._check_blocks(blocks)
        warnings: list[str] = []
        if len(text) > self.settings.max_text:
            text = text[: self.settings.max_text]
            warnings.append("message_truncated")
        thread_ts = _text_arg(args.values.get("thread_ts"))
        root: Message | None = None
        if thread_ts:
            root = self.store.find("slack", channel.id, thread_ts)
            if root is not None and root.api is not None and root.api.root is not None:
                root = self.store.get(root.api.root)
        ts = channel.next_ts()
        native: dict[str, Any] = {
            "user": BOT_USER_ID,
            "type": "message",
            "ts": ts,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": text,
            "team": TEAM_ID,
            "bot_profile": self._bot_profile(),
        }
        if blocks:
            native["blocks"] = _with_block_ids(blocks)
        if attachments:
            native["attachments"] = [{**a, "id": n} for n, a in enumerate(attachments, 1)]
        metadata = _metadata_arg(args.values)
        api = ApiPost("slack", channel.id, channel.label(), ts)
        if thread_ts:
            native["thread_ts"] = root.api.chat_id if root is not None and root.api is not None else thread_ts
            native["parent_user_id"] = BOT_USER_ID
            if root is None:
                api.orphan_of = thread_ts
            else:
                api.root = root.id
        api.native = native
        saved = self.store.add("slack", api.channel_name, _payload(native), api=api)
        if not thread_ts:
            history = self._history.setdefault(channel.id, [])
            history.append({**copy.deepcopy(native), **({"metadata": metadata} if metadata else {})})
            del history[:-HISTORY_KEPT]
        if thread_ts and root is not None:
            self._thread_grew(root, ts)
        log.info("sink.api_post", api="slack", id=saved.id, reply=bool(thread_ts))
        answer: dict[str, Any] = {"ok": True, "channel": channel.id, "ts": ts, "message": copy.deepcopy(native)}
        if warnings:
            answer["warning"] = ",".join(warnings)
            answer["response_metadata"] = {
                "warnings": warnings,
                "messages": [
                    f"[WARN] Your message was truncated but still posted. The `text` field accepts up to "
                    f"{self.settings.max_text:,} characters."
                ],
            }
        return answer

    def update(self, args: Args) -> dict[str, Any]:
        self._rate(self.update_limiter, f"update:{args.token}")
        channel = self._channel(args)
        ts = _text_arg(args.values.get("ts"))
        found = self.store.find("slack", channel.id, ts) if ts else None
        if found is None or found.api is None:
            raise SlackError("message_not_found")
        has_text = "text" in args.values and args.values["text"] is not None
        text = _text_arg(args.values.get("text"))
        blocks = _json_arg(args.values, "blocks")
        attachments = _json_arg(args.values, "attachments")
        if not has_text and blocks is None and attachments is None:
            raise SlackError("no_text")
        if len(text) > self.settings.max_update_text:
            raise SlackError("msg_too_long")
        if attachments is not None and len(attachments) > MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")
        if blocks is not None:
            self._check_blocks(blocks)
        native = copy.deepcopy(found.api.native)
        if has_text:
            native["text"] = text
        if blocks is not None:
            if blocks:
                native["blocks"] = _with_block_ids(blocks)
            else:
                native.pop("blocks", None)
        elif has_text:
            # Omitted blocks are kept only when text is omitted too.
            native.pop("blocks", None)
        if attachments is not None:
            if attachments:
                native["attachments"] = [{**a, "id": n} for n, a in enumerate(attachments, 1)]
            else:
                native.pop("attachments", None)
        native["edited"] = {"user": BOT_USER_ID, "ts": f"{time.time():.6f}"}
        found.api.native = native
        found.api.edited = True
        found.replace_payload(_payload(native))
        self.store.changed()
        log.info("sink.api_edit", api="slack", id=found.id)
        return {"ok": True, "channel": channel.id, "ts": ts, "text": native["text"], "message": copy.deepcopy(native)}

    def auth_test(self, args: Args) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://alertq-sink.slack.com/",
            "team": TEAM_NAME,
            "user": self.settings.bot_name,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def conversations_history(self, args: Args) -> dict[str, Any]:
        """The channel's messages, newest first (roots only: replies stay in their threads), since
        `oldest`; metadata only with `include_all_metadata`, as Slack does."""
        channel = self._channel(args)
        if not self.world.is_member(channel):
            raise SlackError("not_in_channel")
        oldest = float(_text_arg(args.values.get("oldest")) or 0)
        limit = int(_text_arg(args.values.get("limit")) or 100)
        with_metadata = _text_arg(args.values.get("include_all_metadata")).lower() in ("true", "1")
        found = [
            message if with_metadata else {k: v for k, v in message.items() if k != "metadata"}
            for message in reversed(self._history.get(channel.id, []))
            if float(message["ts"]) >= oldest
        ]
        return {"ok": True, "messages": found[: max(1, min(limit, 999))], "has_more": len(found) > limit}

    def conversations_info(self, args: Args) -> dict[str, Any]:
        channel = self._channel(args)
        info: dict[str, Any] = {
            "id": channel.id,
            "created": channel.created,
            "is_archived": False,
            "is_member": self.world.is_member(channel),
        }
        if channel.is_im:
            info.update({"is_im": True, "user": channel.user})
        else:
            info.update(
                {
                    "name": channel.name,
                    "is_channel": True,
                    "is_group": False,
                    "is_im": False,
                    "is_private": False,
                    "is_general": False,
                    "name_normalized": channel.name,
                }
            )
        return {"ok": True, "channel": info}

    # --- checks ------------------------------------------------------------------------------------

    def _channel(self, args: Args) -> SlackChannel:
        channel = self.world.resolve(_text_arg(args.values.get("channel")))
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    @staticmethod
    def _rate(limiter: Limiter, key: str) -> None:
        verdict = limiter.take(key)
        if not verdict.allowed:
            raise SlackError("ratelimited", retry_after=verdict.retry_after_seconds())

    def _check_blocks(self, blocks: list[Any]) -> None:
        errors: list[str] = []
        if len(blocks) > self.settings.max_blocks:
            errors.append(f"must provide no more than {self.settings.max_blocks} items [json-pointer:/blocks]")
        for n, block in enumerate(blocks):
            where = f"/blocks/{n}"
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                errors.append(f"missing required field: type [json-pointer:{where}]")
                continue
            kind = block["type"]
            if kind == "header":
                errors += _text_limit(block.get("text"), HEADER_TEXT, f"{where}/text")
            elif kind == "section":
                errors += _text_limit(block.get("text"), SECTION_TEXT, f"{where}/text")
                fields = block.get("fields")
                if isinstance(fields, list):
                    if len(fields) > MAX_FIELDS:
                        errors.append(f"must provide no more than {MAX_FIELDS} items [json-pointer:{where}/fields]")
                    for m, item in enumerate(fields):
                        errors += _text_limit(item, FIELD_TEXT, f"{where}/fields/{m}")
                errors += _button(block.get("accessory"), f"{where}/accessory")
            elif kind == "actions":
                elements = block.get("elements")
                if isinstance(elements, list):
                    if len(elements) > ACTION_ELEMENTS:
                        errors.append(
                            f"must provide no more than {ACTION_ELEMENTS} items [json-pointer:{where}/elements]"
                        )
                    for m, element in enumerate(elements):
                        errors += _button(element, f"{where}/elements/{m}")
        if errors:
            raise SlackError(
                "invalid_blocks", errors=errors, response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
            )

    def _thread_grew(self, root: Message, ts: str) -> None:
        assert root.api is not None
        replies = self.store.replies(root.id)
        root.api.native.update(
            {
                "thread_ts": root.api.chat_id,
                "reply_count": len(replies),
                "reply_users": [BOT_USER_ID],
                "reply_users_count": 1,
                "latest_reply": ts,
            }
        )
        self.store.changed()

    def _bot_profile(self) -> dict[str, Any]:
        return {"id": BOT_ID, "app_id": APP_ID, "name": self.settings.bot_name, "deleted": False, "team_id": TEAM_ID}

    # --- plumbing ----------------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["method"]
        status = 200
        headers: dict[str, str] = {}
        recorded: Any = None
        authorized = False
        try:
            args = await _read_args(request)
            recorded = args.recorded
            if self.settings.answer_delay:
                await asyncio.sleep(self.settings.answer_delay)
            method = self.methods.get(name)
            if method is None:
                raise SlackError("unknown_method")
            if not args.token:
                raise SlackError("not_authed")
            authorized = not self.tokens or args.token in self.tokens
            if not authorized:
                raise SlackError("invalid_auth")
            answer = method(args)
        except SlackError as exc:
            answer = {"ok": False, "error": exc.error}
            retry_after = exc.extra.pop("retry_after", None)
            answer.update(exc.extra)
            if retry_after is not None:
                status = 429
                headers["Retry-After"] = str(retry_after)
        response = JSONResponse(answer, status_code=status, headers=headers)
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        error = None if answer.get("ok") else str(answer.get("error"))
        query = dict(request.query_params)
        content_type = request.headers.get("content-type", "")
        self.calls.record(
            "slack", request.method, request.url.path, query, content_type, recorded, status, answer, error, authorized
        )
        if error:
            log.info("sink.api_refused", api="slack", method=name, status=status, error=error)
        return response


async def _read_args(request: Request) -> Args:
    """Arguments from the query, a JSON body or a form, and the token from the header or a `token` field."""
    try:
        body = await read_body(request)
    except BadRequest:
        raise SlackError("request_timeout") from None
    values: dict[str, Any] = {k: v for k, v in request.query_params.items()}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    header_token = bearer_token(request)
    recorded: Any = None
    if body:
        if content_type == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(decoded, dict):
                raise SlackError("invalid_json")
            recorded = decoded
            values.update(decoded)
            # JSON bodies need the header: Slack ignores a token inside them.
            return Args(values, header_token, recorded)
        if content_type == "application/x-www-form-urlencoded":
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        elif content_type == "multipart/form-data":
            parsed = await _multipart(request, body)
            form = {k: v for k, v in parsed.items()}
        elif not content_type:
            raise SlackError("missing_post_type")
        else:
            raise SlackError("invalid_post_type")
        recorded = {k: v for k, v in form.items() if k != "token"}
        values.update(form)
    token = header_token or values.pop("token", None)
    values.pop("token", None)
    return Args(values, token if isinstance(token, str) and token else None, recorded)


async def _multipart(request: Request, body: bytes) -> dict[str, str]:
    # The body was read already; hand it back to starlette's form parser.
    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form()
    return {k: v if isinstance(v, str) else "" for k, v in form.items() if not isinstance(v, UploadFile)}


HISTORY_KEPT = 2000


def _metadata_arg(values: dict[str, Any]) -> dict[str, Any] | None:
    """chat.postMessage `metadata`: a JSON object (or its JSON text, in a form post)."""
    value = values.get("metadata")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("event_type"), str):
        raise SlackError("invalid_metadata_format")
    return value


def _text_arg(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _json_arg(values: dict[str, Any], name: str) -> list[Any] | None:
    """`blocks`/`attachments`: a list in JSON bodies, a JSON string in forms; absent is None."""
    value = values.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{name}_format" if name == "blocks" else "invalid_attachments") from None
    if not isinstance(value, list):
        raise SlackError("invalid_blocks_format" if name == "blocks" else "invalid_attachments")
    return value


def _text_limit(obj: Any, limit: int, where: str) -> list[str]:
    text = obj.get("text") if isinstance(obj, dict) else None
    if isinstance(text, str) and len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _button(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return []
    value = element.get("value")
    if isinstance(value, str) and len(value) > BUTTON_VALUE:
        return [f"must be less than {BUTTON_VALUE + 1} characters [json-pointer:{where}/value]"]
    return []


def _with_block_ids(blocks: list[Any]) -> list[Any]:
    """Slack gives every block a block_id when it has none."""
    out = copy.deepcopy(blocks)
    for block in out:
        if isinstance(block, dict) and not block.get("block_id"):
            block["block_id"] = secrets.token_urlsafe(4)[:5]
    return out


def _payload(native: dict[str, Any]) -> dict[str, Any]:
    """What the page renders: the message's text, blocks and attachments."""
    return {k: native[k] for k in ("text", "blocks", "attachments") if k in native}
