"""The sink's HTTP side: webhook endpoints and chat APIs that answer like the real ones, the page,
the sink's own JSON API (/api/messages, /api/calls, /api/version, /api/core/commands)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from alertq.sink import actions
from alertq.sink.bodies import BadRequest, read_body
from alertq.sink.calls import CallLog
from alertq.sink.core import CoreCommandFile
from alertq.sink.markup import to_html
from alertq.sink.mattermost_api import MattermostApi
from alertq.sink.slack_api import SlackApi
from alertq.sink.store import Channel, Message, Store
from schemas.sink import SinkSettings

log = structlog.get_logger("alertq.sink")

# The page draws the newest this many posts (roots with their threads); all stay in the JSON API.
PAGE_LIMIT = 200
# Headers worth showing with a webhook: how it was signed and sent, never cookies or auth.
KEPT_HEADERS = ("content-type", "user-agent", "x-alertq-signature")
# Inline styles and scripts only; mail HTML may not fetch anything from elsewhere either.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "frame-src 'self'; base-uri 'none'; form-action 'self'"
)


@dataclass
class Conversation:
    """A chat channel the APIs posted in, as the page's channel list shows it."""

    key: str
    api: str
    name: str
    roots: int = 0


@dataclass
class Item:
    """One post on the page: a webhook message or mail, or an API root with its thread in order."""

    message: Message
    replies: list[Message] = field(default_factory=list)


def conversation_key(message: Message) -> str:
    return "hooks" if message.api is None else f"{message.api.api}:{message.api.channel_id}"


def create_app(settings: SinkSettings, store: Store) -> Starlette:
    templates = Environment(loader=PackageLoader("alertq.sink", "templates"), autoescape=select_autoescape())
    templates.filters["chat"] = to_html
    calls = CallLog(settings.max_calls)
    mattermost = MattermostApi(settings.mattermost, store, calls)
    slack = SlackApi(settings.slack, store, calls)
    core = CoreCommandFile(settings.core_command_file) if settings.core_command_file is not None else None

    def page_version() -> str:
        """What the page compares to redraw: the messages' version, and the core's command file's."""
        return str(store.version) if core is None else f"{store.version}:{core.version()}"

    def page_context(request: Request) -> dict[str, Any]:
        kept = store.all()
        wanted = request.query_params.get("channel") or None
        conversations: dict[str, Conversation] = {}
        tops: list[Message] = []
        for message in kept:
            key = conversation_key(message)
            if message.api is not None and message.api.root is not None:
                continue
            if message.api is not None:
                found = conversations.setdefault(key, Conversation(key, message.api.api, message.api.channel_name))
                found.roots += 1
            if wanted in (None, key):
                tops.append(message)
        newest = tops[: -PAGE_LIMIT - 1 : -1]
        return {
            "settings": settings,
            "store": store,
            "items": [Item(m, store.replies(m.id)) for m in newest],
            "conversations": list(conversations.values()),
            "has_hooks": any(m.api is None for m in kept),
            "wanted": wanted,
            "kept": len(tops),
            "page_limit": PAGE_LIMIT,
            "core": core,
            "core_commands": core.commands() if core is not None else [],
            "page_version": page_version(),
        }

    async def page(request: Request) -> Response:
        html = templates.get_template("page.html").render(page_context(request))
        return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})

    async def messages_fragment(request: Request) -> Response:
        html = templates.get_template("messages.html").render(page_context(request))
        return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Sink-Version": page_version()})

    async def version(request: Request) -> Response:
        return JSONResponse(
            {"version": store.version, "page": page_version(), "count": len(store.all()), "dropped": store.dropped}
        )

    async def core_commands(request: Request) -> Response:
        """The lines of `sink.core_command_file`, oldest first: what the monitoring core received."""
        if core is None:
            return JSONResponse({"error": "no core command file is shown (sink.core_command_file)"}, status_code=404)
        return JSONResponse({"file": str(core.path), "commands": [c.as_json() for c in core.commands()]})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "messages": len(store.all())})

    async def chat_hook(request: Request) -> Response:
        channel: Channel = "mattermost" if request.url.path.startswith("/hooks/mattermost/") else "slack"
        try:
            payload = await _chat_payload(request)
        except BadRequest as exc:
            return PlainTextResponse(exc.text, status_code=exc.status)
        if not payload.get("text") and not payload.get("attachments") and not payload.get("blocks"):
            return PlainTextResponse("no_text", status_code=400)
        _keep(store, channel, request, payload)
        return PlainTextResponse("ok")

    async def webhook_hook(request: Request) -> Response:
        try:
            body = await read_body(request)
        except BadRequest as exc:
            return PlainTextResponse(exc.text, status_code=exc.status)
        try:
            decoded = json.loads(body)
            payload = decoded if isinstance(decoded, dict) else {"json": decoded}
        except ValueError:
            payload = {"body": body.decode("utf-8", "replace")}
        _keep(store, "webhook", request, payload)
        return PlainTextResponse("ok")

    async def slack_response(request: Request) -> Response:
        """Slack's response_url: the listener replaces, deletes or answers the clicked message."""
        message = store.get(request.path_params["id"])
        if message is None or not secrets.compare_digest(message.response_token, request.path_params["token"]):
            return PlainTextResponse("invalid response_url", status_code=404)
        try:
            answer = json.loads(await read_body(request))
        except (BadRequest, ValueError):
            return JSONResponse({"ok": False, "error": "invalid_payload"}, status_code=400)
        if not isinstance(answer, dict):
            return JSONResponse({"ok": False, "error": "invalid_payload"}, status_code=400)
        if answer.get("delete_original"):
            store.delete(message.id)
        elif answer.get("replace_original"):
            actions.apply_slack_replacement(message, answer)
            store.changed()
        else:
            reply = store.add("slack", message.hook, {k: v for k, v in answer.items() if k != "response_type"})
            if answer.get("response_type") != "in_channel":
                reply.notes.append("(only visible to you)")
        log.info("sink.slack_response", id=message.id)
        return JSONResponse({"ok": True})

    async def list_messages(request: Request) -> Response:
        wanted = request.query_params.get("channel")
        limit = request.query_params.get("limit", "")
        if limit and not limit.isdigit():
            return JSONResponse({"error": "limit must be a whole number"}, status_code=400)
        found = [m for m in store.all() if wanted in (None, m.channel)]
        if limit:
            found = found[len(found) - int(limit) :] if int(limit) else []
        return JSONResponse([m.as_json() for m in found])

    async def get_message(request: Request) -> Response:
        message = store.get(request.path_params["id"])
        if message is None:
            return JSONResponse({"error": f"no message {request.path_params['id']}"}, status_code=404)
        return JSONResponse(message.as_json())

    async def delete_messages(request: Request) -> Response:
        return JSONResponse({"deleted": store.clear()})

    async def delete_message(request: Request) -> Response:
        """As if someone deleted the post in the chat: the API no longer finds it (404, message_not_found)."""
        message = store.get(request.path_params["id"])
        if message is None:
            return JSONResponse({"error": f"no message {request.path_params['id']}"}, status_code=404)
        store.delete(message.id)
        return JSONResponse({"deleted": message.id})

    async def list_calls(request: Request) -> Response:
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            return JSONResponse({"error": "after must be a whole number"}, status_code=400)
        return JSONResponse(calls.list(request.query_params.get("api"), int(after)))

    async def delete_calls(request: Request) -> Response:
        return JSONResponse({"deleted": calls.clear()})

    async def click(request: Request) -> Response:
        message = store.get(request.path_params["id"])
        if message is None:
            return JSONResponse({"error": f"no message {request.path_params['id']}"}, status_code=404)
        user_name = settings.user_name
        selected = None
        if await request.body():
            try:
                asked = await request.json()
                user_name = str(asked.get("user_name") or user_name)
                option = asked.get("selected_option")
            except (ValueError, AttributeError):
                return JSONResponse(
                    {"error": 'body must be JSON like {"user_name": "alice"} (a menu: "selected_option": …)'},
                    status_code=400,
                )
            selected = None if option is None else str(option)
        try:
            result = await actions.click(message, request.path_params["action"], user_name, settings, selected)
        except actions.ActionFailed as exc:
            message.notes.append(f"click failed: {exc.reason}")
            store.changed()
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        store.changed()
        return JSONResponse({**result, "message": message.as_json()})

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/partials/messages", messages_fragment, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/hooks/mattermost/{hook:path}", chat_hook, methods=["POST"]),
        Route("/hooks/slack/{hook:path}", chat_hook, methods=["POST"]),
        Route("/hooks/webhook/{hook:path}", webhook_hook, methods=["POST"]),
        Route("/hooks/slack-response/{id}/{token}", slack_response, methods=["POST"]),
        Route("/api/version", version, methods=["GET"]),
        Route("/api/messages", list_messages, methods=["GET"]),
        Route("/api/messages", delete_messages, methods=["DELETE"]),
        Route("/api/messages/{id}", get_message, methods=["GET"]),
        Route("/api/messages/{id}", delete_message, methods=["DELETE"]),
        Route("/api/messages/{id}/actions/{action}", click, methods=["POST"]),
        Route("/api/calls", list_calls, methods=["GET"]),
        Route("/api/calls", delete_calls, methods=["DELETE"]),
        Route("/api/core/commands", core_commands, methods=["GET"]),
        *mattermost.routes(),
        # Last: Slack's /api/<method> would otherwise take the sink's own /api/… paths.
        *slack.routes(),
    ]
    return Starlette(routes=routes)


def _keep(store: Store, channel: Channel, request: Request, payload: dict[str, Any]) -> Message:
    hook = request.path_params["hook"] or "-"
    headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
    message = store.add(channel, hook, payload, headers)
    log.info("sink.received", channel=channel, id=message.id)
    return message


async def _chat_payload(request: Request) -> dict[str, Any]:
    """JSON body, or form `payload=<json>` (both Mattermost and Slack accept that too)."""
    body = await read_body(request)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = (parse_qs(body.decode("utf-8", "replace")).get("payload") or [""])[0].encode()
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest(400, "invalid_payload") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "invalid_payload")
    return payload
