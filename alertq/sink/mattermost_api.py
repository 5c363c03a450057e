"""The Mattermost REST API v4 subset alertq uses, answered as the server answers it.

Routes (under /api/v4): POST /posts, PUT /posts/{id}/patch, GET /posts/{id},
GET /teams/name/{team}/channels/name/{channel}, GET /users/username/{name}, GET /users/me,
POST /channels/direct. Anything else under /api/v4 is the server's 404.

Faithful to the server code (server/channels/api4/post.go, app/post.go, model/post.go):
- auth: `Authorization: Bearer <token>` (or `Token <token>`); a missing or refused token is 401
  `api.context.session_expired.app_error`;
- errors are `{id, message, detailed_error, request_id, status_code, is_oauth}` with an
  `X-Request-Id` header; detailed_error is empty, as on a server not in developer mode;
- posting in a channel the bot is not in, or one that does not exist, is 403
  `api.context.permissions.app_error` (the permission check comes first); editing a post that does
  not exist (or was deleted) is 403 too; GET of one is 404 `app.post.get.app_error`;
- `root_id` must name a root in the same channel, else 400 `api.post.create_post.root_id.app_error`;
- `message` longer than MaxPostSize runes is 400 `model.post.is_valid.message_length.app_error`,
  on create and on patch alike (no truncation);
- a create whose `pending_post_id` was seen in the last 30 s answers the post made then instead of
  making another (the server's `deduplicateCreatePost`, `pendingPostIDsCacheTTL`): a client that
  repeats a create it never got the answer to does not post twice;
- a patch replaces only the fields it names, a `props` value the whole map; `edit_at` is set when
  the message changes (the chat's "Edited" marker), not for a props-only change;
- answers leave out actions' `integration` (their context stays confidential), and actions without
  an id get one, as the server does;
- the rate limit (GCRA, per token here, per IP by default on a real server) sets
  `X-Ratelimit-Limit/Remaining/Reset` on every answer and answers 429 `limit exceeded` (plain text)
  with `Retry-After` beyond.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from alertq.sink.bodies import BadRequest, bearer_token, read_body
from alertq.sink.calls import CallLog
from alertq.sink.ratelimit import Limiter, Verdict
from alertq.sink.store import ApiPost, Message, Store
from schemas.sink import SinkMattermostApi

log = structlog.get_logger("alertq.sink")

ID_PATTERN = re.compile(r"^[a-z0-9]{26}$")
USERNAME_PATTERN = re.compile(r"^[a-z0-9.\-_]{1,64}$")
MAX_PROPS_RUNES = 800_000

PERMISSION_DENIED = ("api.context.permissions.app_error", "You do not have the appropriate permissions.")
SESSION_EXPIRED = ("api.context.session_expired.app_error", "Invalid or expired session, please login again.")
POST_NOT_FOUND = ("app.post.get.app_error", "Unable to get post.")
TEAM_NOT_FOUND = ("app.team.get_by_name.missing.app_error", "Unable to find the existing team.")
CHANNEL_NOT_FOUND = ("app.channel.get_by_name.missing.app_error", "Channel does not exist.")
USER_NOT_FOUND = (
    "app.user.get_by_username.app_error",
    "Unable to find an existing account matching your username for this team. "
    "This team may require an invite from the team owner to join.",
)
USER_ID_NOT_FOUND = ("app.user.missing_account.const", "Unable to find the user.")
BAD_ROOT = ("api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
TOO_LONG = (
    "model.post.is_valid.message_length.app_error",
    "Post Message property is longer than the maximum permitted length.",
)
BAD_PROPS = ("model.post.is_valid.props.app_error", "Invalid props.")
NOT_FOUND = ("api.context.404.app_error", "Sorry, we could not find the page.")
PENDING_POST_IDS_TTL = 30.0  # seconds: the server's pendingPostIDsCacheTTL


def new_id() -> str:
    """26 characters of [a-z0-9], as Mattermost's NewId."""
    return base64.b32encode(secrets.token_bytes(20)).decode().lower()[:26]


def stable_id(kind: str, name: str) -> str:
    """The same id for the same name, across restarts: a client that cached it keeps working."""
    digest = hashlib.sha256(f"{kind}:{name}".encode()).digest()
    return base64.b32encode(digest).decode().lower()[:26]


def now_ms() -> int:
    return int(time.time() * 1000)


class MattermostError(Exception):
    def __init__(self, status: int, error: tuple[str, str]) -> None:
        super().__init__(error[1])
        self.status = status
        self.error_id, self.message = error


def invalid_url_param(name: str) -> MattermostError:
    message = f"Invalid or missing {name} parameter in request URL."
    return MattermostError(400, ("api.context.invalid_url_param.app_error", message))


def invalid_body_param(name: str) -> MattermostError:
    return MattermostError(
        400, ("api.context.invalid_body_param.app_error", f"Invalid or missing {name} in request body.")
    )


class MattermostWorld:
    """The bot, teams, channels and users, as the settings describe them.

    With `channels` unset every channel name exists (made when first looked up) and any well-formed
    channel id is taken as an existing channel, so a client that cached ids survives a sink restart.
    """

    def __init__(self, settings: SinkMattermostApi) -> None:
        self.settings = settings
        self.bot = self._user(settings.bot_username, is_bot=True)
        self.users_by_id: dict[str, dict[str, Any]] = {self.bot["id"]: self.bot}
        self.channels: dict[str, dict[str, Any]] = {}
        self.not_member = {stable_id("channel", name) for name in settings.not_member}
        for name in settings.channels or []:
            team, _, channel = name.partition("/")
            self._make_channel(team, channel)
        self.teams = {name.partition("/")[0] for name in settings.channels or []}

    def team_exists(self, team: str) -> bool:
        return self.settings.channels is None or team in self.teams

    def channel_by_name(self, team: str, name: str) -> dict[str, Any] | None:
        found = self.channels.get(stable_id("channel", f"{team}/{name}"))
        if found is None and self.settings.channels is None:
            found = self._make_channel(team, name)
        return found

    def channel(self, channel_id: str) -> dict[str, Any] | None:
        found = self.channels.get(channel_id)
        if found is None and self.settings.channels is None and ID_PATTERN.match(channel_id):
            found = self._make_channel("", channel_id, channel_id=channel_id)
        return found

    def is_member(self, channel: dict[str, Any]) -> bool:
        return channel["id"] not in self.not_member

    def user_by_name(self, username: str) -> dict[str, Any] | None:
        if username == self.bot["username"]:
            return self.bot
        if self.settings.users is not None and username not in self.settings.users:
            return None
        user = self._user(username, is_bot=False)
        self.users_by_id[user["id"]] = user
        return user

    def user(self, user_id: str) -> dict[str, Any] | None:
        found = self.users_by_id.get(user_id)
        if found is None and self.settings.users is None and ID_PATTERN.match(user_id):
            found = {**self._user(user_id, is_bot=False), "id": user_id}
            self.users_by_id[user_id] = found
        return found

    def direct(self, first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
        name = "__".join(sorted((first["id"], second["id"])))
        channel_id = stable_id("direct", name)
        if channel_id not in self.channels:
            label = "@" + (second if first["id"] == self.bot["id"] else first)["username"]
            channel = self._channel_record(channel_id, "", name, label, "D")
            self.channels[channel_id] = channel
        return self.channels[channel_id]

    def label(self, channel: dict[str, Any]) -> str:
        """How the page names a channel: `team/channel`, or `@user` for a direct one."""
        return str(channel.get("_label") or channel["name"])

    def _make_channel(self, team: str, name: str, channel_id: str | None = None) -> dict[str, Any]:
        channel_id = channel_id or stable_id("channel", f"{team}/{name}")
        label = f"{team}/{name}" if team else name
        channel = self._channel_record(channel_id, stable_id("team", team) if team else "", name, label, "O")
        self.channels[channel_id] = channel
        return channel

    def _channel_record(self, channel_id: str, team_id: str, name: str, label: str, kind: str) -> dict[str, Any]:
        created = now_ms()
        return {
            "id": channel_id,
            "create_at": created,
            "update_at": created,
            "delete_at": 0,
            "team_id": team_id,
            "type": kind,
            "display_name": "" if kind == "D" else name,
            "name": name,
            "header": "",
            "purpose": "",
            "last_post_at": 0,
            "total_msg_count": 0,
            "extra_update_at": 0,
            "creator_id": "" if kind == "D" else self.bot["id"],
            "scheme_id": None,
            "props": None,
            "group_constrained": None,
            "shared": None,
            "total_msg_count_root": 0,
            "policy_id": None,
            "last_root_post_at": 0,
            "_label": label,
        }

    @staticmethod
    def _user(username: str, is_bot: bool) -> dict[str, Any]:
        return {
            "id": stable_id("user", username),
            "create_at": 0,
            "update_at": 0,
            "delete_at": 0,
            "username": username,
            "auth_data": "",
            "auth_service": "",
            "email": "" if is_bot else f"{username}@alertq-sink.local",
            "nickname": "",
            "first_name": "",
            "last_name": "",
            "position": "",
            "roles": "system_user",
            "locale": "en",
            "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
            "is_bot": is_bot,
            "disable_welcome_email": False,
        }


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A world record as the API shows it (without the sink's own keys)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


@dataclass
class Call:
    request: Request
    body: bytes
    request_id: str

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise invalid_body_param(name) from None


Handler = Callable[[Call], tuple[int, Any]]


class MattermostApi:
    def __init__(self, settings: SinkMattermostApi, store: Store, calls: CallLog) -> None:
        self.settings = settings
        self.store = store
        self.calls = calls
        self.world = MattermostWorld(settings)
        self.limiter = Limiter(settings.rate_limit)
        self.tokens = {t.get_secret_value() for t in settings.tokens}
        self._pending_post_ids: dict[str, tuple[float, str]] = {}  # pending_post_id → (until, post id)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v4/posts", self._endpoint(self.create_post), methods=["POST"]),
            Route("/api/v4/posts/{post_id}/patch", self._endpoint(self.patch_post), methods=["PUT"]),
            Route("/api/v4/posts/{post_id}", self._endpoint(self.get_post), methods=["GET"]),
            Route(
                "/api/v4/teams/name/{team}/channels/name/{channel}",
                self._endpoint(self.channel_by_name),
                methods=["GET"],
            ),
            Route("/api/v4/users/me", self._endpoint(self.me), methods=["GET"]),
            Route("/api/v4/users/username/{username}", self._endpoint(self.user_by_name), methods=["GET"]),
            Route("/api/v4/channels/direct", self._endpoint(self.direct_channel), methods=["POST"]),
            Route("/api/v4/{rest:path}", self._endpoint(self.not_found), methods=["GET", "POST", "PUT", "DELETE"]),
        ]

    # --- the calls ---------------------------------------------------------------------------------

    def create_post(self, call: Call) -> tuple[int, Any]:
        post = call.json("post")
        if not isinstance(post, dict):
            raise invalid_body_param("post")
        channel = self.world.channel(str(post.get("channel_id") or ""))
        if channel is None or not self.world.is_member(channel):
            raise MattermostError(403, PERMISSION_DENIED)
        message = _str_field(post, "message")
        props: dict[str, Any] = post["props"] if isinstance(post.get("props"), dict) else {}
        root_id = _str_field(post, "root_id")
        root: Message | None = None
        if root_id:
            root = self.store.find("mattermost", channel["id"], root_id)
            if root is None or root.api is None or root.api.channel_id != channel["id"] or root.api.root is not None:
                raise MattermostError(400, BAD_ROOT)
        self._check_message(message)
        self._check_props(props)
        pending_post_id = str(post.get("pending_post_id") or "")
        seen = self._seen_pending(pending_post_id)
        if seen is not None:
            log.info("sink.api_post_deduplicated", api="mattermost", id=seen.id)
            return 201, self._answer(seen)
        created = now_ms()
        native: dict[str, Any] = {
            "id": new_id(),
            "create_at": created,
            "update_at": created,
            "edit_at": 0,
            "delete_at": 0,
            "is_pinned": False,
            "user_id": self.world.bot["id"],
            "channel_id": channel["id"],
            "root_id": root_id,
            "original_id": "",
            "message": message,
            "type": "",
            "props": {**_with_action_ids(props), "from_bot": "true"},
            "hashtags": "",
            "pending_post_id": str(post.get("pending_post_id") or ""),
            "reply_count": 0,
            "last_reply_at": 0,
            "participants": None,
            "metadata": {},
        }
        if isinstance(post.get("file_ids"), list) and post["file_ids"]:
            native["file_ids"] = post["file_ids"]
        api = ApiPost("mattermost", channel["id"], self.world.label(channel), native["id"], native=native)
        if root is not None:
            api.root = root.id
            assert root.api is not None
            root.api.native["last_reply_at"] = created
        channel["last_post_at"] = created
        channel["total_msg_count"] += 1
        saved = self.store.add("mattermost", api.channel_name, _payload(native), api=api)
        if pending_post_id:
            self._pending_post_ids[pending_post_id] = (time.monotonic() + PENDING_POST_IDS_TTL, native["id"])
        if root is not None:
            root.api.native["reply_count"] = len(self.store.replies(root.id))  # type: ignore[union-attr]
            self.store.changed()
        log.info("sink.api_post", api="mattermost", id=saved.id, reply=root is not None)
        return 201, self._answer(saved)

    def _seen_pending(self, pending_post_id: str) -> Message | None:
        """The post a create with this pending_post_id made within the last 30 s, if it still exists."""
        if not pending_post_id:
            return None
        now = time.monotonic()
        for key in [k for k, (until, _) in self._pending_post_ids.items() if until < now]:
            del self._pending_post_ids[key]
        seen = self._pending_post_ids.get(pending_post_id)
        return None if seen is None else self.store.find("mattermost", "", seen[1])

    def patch_post(self, call: Call) -> tuple[int, Any]:
        post_id = call.request.path_params["post_id"]
        if not ID_PATTERN.match(post_id):
            raise invalid_url_param("post_id")
        patch = call.json("patch")
        if not isinstance(patch, dict):
            raise invalid_body_param("patch")
        found = self.store.find("mattermost", "", post_id)
        if found is None or found.api is None:
            raise MattermostError(403, PERMISSION_DENIED)
        channel = self.world.channel(found.api.channel_id)
        if channel is None or not self.world.is_member(channel):
            raise MattermostError(403, PERMISSION_DENIED)
        native = found.api.native
        changed = dict(native)
        if "message" in patch and isinstance(patch["message"], str):
            self._check_message(patch["message"])
            if patch["message"] != native["message"]:
                changed["message"] = patch["message"]
                changed["edit_at"] = now_ms()
        if "props" in patch and patch["props"] is not None:
            props = patch["props"] if isinstance(patch["props"], dict) else {}
            self._check_props(props)
            # A props value replaces the whole map; the server keeps the bot's own mark.
            changed["props"] = {**_with_action_ids(props), "from_bot": native["props"].get("from_bot", "true")}
        if isinstance(patch.get("is_pinned"), bool):
            changed["is_pinned"] = patch["is_pinned"]
        if isinstance(patch.get("file_ids"), list):
            changed["file_ids"] = patch["file_ids"]
        changed["update_at"] = now_ms()
        found.api.native = changed
        found.api.edited = changed["edit_at"] != 0
        found.replace_payload(_payload(changed))
        self.store.changed()
        log.info("sink.api_edit", api="mattermost", id=found.id)
        return 200, self._answer(found)

    def get_post(self, call: Call) -> tuple[int, Any]:
        post_id = call.request.path_params["post_id"]
        if not ID_PATTERN.match(post_id):
            raise invalid_url_param("post_id")
        found = self.store.find("mattermost", "", post_id)
        if found is None or found.api is None:
            raise MattermostError(404, POST_NOT_FOUND)
        channel = self.world.channel(found.api.channel_id)
        if channel is None or not self.world.is_member(channel):
            raise MattermostError(403, PERMISSION_DENIED)
        return 200, self._answer(found)

    def channel_by_name(self, call: Call) -> tuple[int, Any]:
        team, name = call.request.path_params["team"], call.request.path_params["channel"]
        if not self.world.team_exists(team):
            raise MattermostError(404, TEAM_NOT_FOUND)
        channel = self.world.channel_by_name(team, name)
        if channel is None:
            raise MattermostError(404, CHANNEL_NOT_FOUND)
        # An open channel is readable by a team member who is not in it: the lookup works, posting is 403.
        return 200, public(channel)

    def me(self, call: Call) -> tuple[int, Any]:
        return 200, self.world.bot

    def user_by_name(self, call: Call) -> tuple[int, Any]:
        username = call.request.path_params["username"]
        if not USERNAME_PATTERN.match(username):
            raise invalid_url_param("username")
        user = self.world.user_by_name(username)
        if user is None:
            raise MattermostError(404, USER_NOT_FOUND)
        return 200, user

    def direct_channel(self, call: Call) -> tuple[int, Any]:
        ids = call.json("user_ids")
        if (
            not isinstance(ids, list)
            or len(ids) != 2
            or not all(isinstance(i, str) and ID_PATTERN.match(i) for i in ids)
        ):
            raise invalid_body_param("user_ids")
        bot_id = self.world.bot["id"]
        if bot_id not in ids:
            # Making a direct channel between two others needs manage_system.
            raise MattermostError(403, PERMISSION_DENIED)
        other_id = ids[1] if ids[0] == bot_id else ids[0]
        other = self.world.user(other_id)
        if other is None:
            raise MattermostError(404, USER_ID_NOT_FOUND)
        return 201, public(self.world.direct(self.world.bot, other))

    def not_found(self, call: Call) -> tuple[int, Any]:
        raise MattermostError(404, NOT_FOUND)

    # --- plumbing ----------------------------------------------------------------------------------

    def _check_message(self, message: str) -> None:
        # Go counts runes; Python str length is code points, the same thing.
        if len(message) > self.settings.max_post_size:
            raise MattermostError(400, TOO_LONG)

    @staticmethod
    def _check_props(props: dict[str, Any]) -> None:
        encoded = json.dumps(props, ensure_ascii=False)
        if len(encoded) > MAX_PROPS_RUNES or len(encoded.encode()) > 1024 * 1024:
            raise MattermostError(400, BAD_PROPS)

    def _answer(self, message: Message) -> dict[str, Any]:
        assert message.api is not None
        answer = copy.deepcopy(message.api.native)
        # Every post of a thread carries the thread's reply count.
        answer["reply_count"] = len(self.store.replies(message.api.root or message.id))
        for attachment in _attachments(answer.get("props")):
            for action in attachment.get("actions") or []:
                if isinstance(action, dict):
                    action.pop("integration", None)
        return answer

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = new_id()
            token = bearer_token(request, ("bearer", "token")) or request.query_params.get("access_token")
            client = request.client.host if request.client else "-"
            verdict = self.limiter.take(f"token:{token}" if token else f"ip:{client}")
            authorized = bool(token) and (not self.tokens or token in self.tokens)
            status: int
            answer: Any
            error: str | None = None
            body = b""
            response: Response
            try:
                body = await read_body(request)
                if not verdict.allowed:
                    response = PlainTextResponse("limit exceeded\n", status_code=429)
                    response.headers["Retry-After"] = str(verdict.retry_after_seconds())
                    status, answer, error = 429, "limit exceeded\n", "limit exceeded"
                else:
                    if self.settings.answer_delay:
                        await asyncio.sleep(self.settings.answer_delay)
                    if not authorized:
                        raise MattermostError(401, SESSION_EXPIRED)
                    status, answer = handler(Call(request, body, request_id))
                    response = JSONResponse(answer, status_code=status)
            except BadRequest:
                status, error = 413, "api.context.request_body_too_large.app_error"
                answer = _error_body(413, (error, "Unable to process request. Request body too large."), request_id)
                response = JSONResponse(answer, status_code=status)
            except MattermostError as exc:
                status, error = exc.status, exc.error_id
                answer = _error_body(exc.status, (exc.error_id, exc.message), request_id)
                response = JSONResponse(answer, status_code=status)
            _rate_headers(response, verdict)
            response.headers["X-Request-Id"] = request_id
            self.calls.record(
                "mattermost",
                request.method,
                request.url.path,
                dict(request.query_params),
                request.headers.get("content-type", ""),
                _recorded_body(body),
                status,
                answer,
                error,
                authorized,
            )
            if status >= 400:
                log.info("sink.api_refused", api="mattermost", path=request.url.path, status=status, error=error)
            return response

        return endpoint


def _rate_headers(response: Response, verdict: Verdict) -> None:
    response.headers["X-Ratelimit-Limit"] = str(verdict.limit)
    response.headers["X-Ratelimit-Remaining"] = str(verdict.remaining)
    response.headers["X-Ratelimit-Reset"] = str(verdict.reset_seconds())


def _error_body(status: int, error: tuple[str, str], request_id: str) -> dict[str, Any]:
    return {
        "id": error[0],
        "message": error[1],
        "detailed_error": "",
        "request_id": request_id,
        "status_code": status,
        "is_oauth": False,
    }


def _recorded_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _str_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""


def _payload(native: dict[str, Any]) -> dict[str, Any]:
    """What the page renders: the post's message and props."""
    return {"message": native["message"], "props": native["props"]}


def _attachments(props: Any) -> list[dict[str, Any]]:
    if not isinstance(props, dict) or not isinstance(props.get("attachments"), list):
        return []
    return [a for a in props["attachments"] if isinstance(a, dict)]


def _with_action_ids(props: dict[str, Any]) -> dict[str, Any]:
    """A copy of props whose actions all have an id, as the server gives them on save."""
    props = copy.deepcopy(props)
    for attachment in _attachments(props):
        for action in attachment.get("actions") or []:
            if isinstance(action, dict) and not action.get("id"):
                action["id"] = new_id()
    return props
