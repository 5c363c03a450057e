"""Mattermost REST API v4 with a bot token: create, edit (patch) and read posts, resolve destinations.

Every call goes through alertq's `HttpClient`, so the channel's `http` settings (timeouts, CA bundle,
proxy) apply as they do to webhooks. Answers become the runtime's outcomes:

- 2xx: done; 401: `Permanent` (the token is refused; the token itself is never named);
- 403: `Permanent` naming the channel (the bot is not in the team or channel, or lacks a permission);
  an edit of a post that no longer exists also gets 403 (the server checks permissions first), so a
  403 on an edit is told apart with a read of the post: gone is `PostNotFound`;
- 404: `PostNotFound` (a post) or `ChannelNotFound` (a team, channel or user): catchable, so that a
  conversation can post a new root when its root was deleted;
- 400 for a reply whose root is gone: `PostNotFound` too; other 400/413: `Permanent` with the server's
  error id (a too long message never gets there: it is cut to the server's limit first);
- 429: `Retryable` after `Retry-After` (or `X-RateLimit-Reset`); 408/425/5xx and connection errors:
  `Retryable`.

The server's `X-RateLimit-*` headers feed a `RateBudget` (`budget`): before each call the client takes
a slot from it and waits for it up to `max_budget_wait` seconds, or raises `Retryable(after=…)` without
calling when the wait would be longer, so a burst of notifications is paced instead of refused.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from delivery.chat.budget import RateBudget, retry_after, server_budget
from delivery.chat.limits import MATTERMOST_MESSAGE_RUNES, clip, fit_mattermost_props
from delivery.chat.outcomes import ChannelNotFound, PostNotEditable, PostNotFound
from delivery.http import Answer, HttpClient
from delivery.outcomes import DeliveryError, Permanent, Retryable, Unreachable
from schemas.channels import HttpSettings

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
EXCERPT = 200

# A reply (`root_id`) to a root that was deleted, or that is not in this channel (any more).
ROOT_GONE_ERRORS = frozenset(
    {
        "api.post.create_post.root_id.app_error",
        "api.post.create_post.channel_root_id.app_error",
        "api.post.create_post.parent_id.app_error",
    }
)
# Edits the server refuses for good although the post exists: the edit time limit (PostEditTimeLimit),
# a post in an archived channel, a system post.
NOT_EDITABLE_ERRORS = frozenset(
    {
        "api.post.update_post.permissions_time_limit.app_error",
        "api.post.patch_post.permissions_time_limit.app_error",
        "api.post.update_post.can_not_update_post_in_deleted.error",
        "api.post.update_post.system_message.app_error",
    }
)

_NAME = r"[^/\s@]+"
_TEAM_CHANNEL = re.compile(rf"^({_NAME})/({_NAME})$")
_DIRECT = re.compile(rf"^@({_NAME})$")


@dataclass(frozen=True)
class TeamChannel:
    """A destination written `team/channel` (the names in the URL, not the display names)."""

    team: str
    channel: str

    def __str__(self) -> str:
        return f"{self.team}/{self.channel}"


@dataclass(frozen=True)
class DirectMessage:
    """A destination written `@user`: the direct channel between the bot and that user."""

    username: str

    def __str__(self) -> str:
        return f"@{self.username}"


def parse_destination(text: str) -> TeamChannel | DirectMessage:
    """`team/channel` or `@user`; raises ValueError naming the expected forms."""
    value = text.strip()
    direct = _DIRECT.match(value)
    if direct:
        return DirectMessage(direct.group(1))
    pair = _TEAM_CHANNEL.match(value)
    if pair:
        return TeamChannel(pair.group(1), pair.group(2))
    raise ValueError(f"not a Mattermost destination: {text!r} (expected team/channel or @user)")


@dataclass(frozen=True)
class MattermostPost:
    """The fields of a post alertq keeps or checks; `root_id` is "" for a root."""

    id: str
    channel_id: str
    root_id: str
    message: str
    props: dict[str, Any] = field(default_factory=dict)
    update_at: int = 0

    @classmethod
    def from_json(cls, data: Any) -> MattermostPost:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise ValueError("not a post")
        props = data.get("props")
        return cls(
            id=data["id"],
            channel_id=str(data.get("channel_id") or ""),
            root_id=str(data.get("root_id") or ""),
            message=str(data.get("message") or ""),
            props=props if isinstance(props, dict) else {},
            update_at=int(data.get("update_at") or 0),
        )


def api_base(api_url: str) -> str:
    """`https://mm.example.org` or `…/api/v4` (with or without a trailing slash) → `…/api/v4`."""
    base = api_url.strip().rstrip("/")
    if not base.endswith("/api/v4"):
        base += "/api/v4"
    return base


class MattermostApi:
    """One Mattermost server, one bot token. Thread-safe; resolved destinations are cached per instance."""

    def __init__(
        self,
        api_url: str,
        token: SecretStr | str,
        http: HttpSettings | None = None,
        *,
        max_message_runes: int = MATTERMOST_MESSAGE_RUNES,
        budget: RateBudget | None = None,
        max_budget_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not secret:
            raise ValueError("a Mattermost bot token is needed")
        self._token = secret
        self.base = api_base(api_url)
        self.http = HttpClient(
            http or HttpSettings(), user_agent="alertq-mattermost", headers={"Authorization": f"Bearer {secret}"}
        )
        self.max_message_runes = max_message_runes
        # Mattermost's defaults when its rate limit is on (RateLimitSettings: 10/s, burst 100, per IP).
        self.budget = budget or RateBudget(per_second=10.0, burst=100)
        self.max_budget_wait = max_budget_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._channels: dict[str, str] = {}  # destination as written → channel id
        self._names: dict[str, str] = {}  # channel id → destination, to name channels in errors
        self._bot_id: str | None = None

    # -- posts ------------------------------------------------------------------------------------

    def create_post(
        self,
        channel_id: str,
        message: str,
        *,
        props: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        root_id: str | None = None,
        pending_post_id: str | None = None,
    ) -> MattermostPost:
        """`POST /posts`: a root, or with `root_id` a reply in that root's thread. `attachments` go into
        `props.attachments` (merged into `props`). Raises `PostNotFound` when the root is gone.

        `pending_post_id` is Mattermost's idempotency key: the server answers a create with a key it saw
        in the last 30 s with the post made then, so a create repeated after its answer was lost (the
        worker died while it was on its way) does not post twice."""
        body: dict[str, Any] = {"channel_id": channel_id, "message": clip(message, self.max_message_runes)}
        if pending_post_id:
            body["pending_post_id"] = pending_post_id
        merged = _props(props, attachments)
        if merged is not None:
            body["props"] = fit_mattermost_props(merged)
        if root_id:
            body["root_id"] = root_id
        channel = self._channel_name(channel_id)
        answer = self._call("POST", "/posts", body)
        if _ok(answer):
            return _post(answer, "the new post")
        error_id = _error_id(answer)
        if root_id and answer.status_code == 400 and error_id in ROOT_GONE_ERRORS:
            raise PostNotFound(f"mattermost: the thread root {root_id} is gone ({error_id})", ref=root_id)
        if answer.status_code == 403:
            raise Permanent(
                f"mattermost: the bot may not post in channel {channel} (403): add it to the team and the "
                "channel, or let it post to all channels" + _detail(answer, self._token)
            )
        if answer.status_code == 404:
            raise ChannelNotFound(f"mattermost: channel {channel} not found (404)", what="channel", ref=channel)
        raise self._failure(answer, f"post in channel {channel}")

    def patch_post(
        self,
        post_id: str,
        *,
        message: str | None = None,
        props: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> MattermostPost:
        """`PUT /posts/{id}/patch`: change only what is given. Note Mattermost's rule: a `props` value
        (and so `attachments`) replaces the post's whole props map. Raises `PostNotFound` when the post
        is gone, `PostNotEditable` when it exists but can no longer be edited."""
        body: dict[str, Any] = {}
        if message is not None:
            body["message"] = clip(message, self.max_message_runes)
        merged = _props(props, attachments)
        if merged is not None:
            body["props"] = fit_mattermost_props(merged)
        answer = self._call("PUT", f"/posts/{quote(post_id, safe='')}/patch", body)
        if _ok(answer):
            return _post(answer, "the edited post")
        if answer.status_code == 404:
            raise PostNotFound(f"mattermost: post {post_id} not found (404)", ref=post_id)
        if answer.status_code == 403:
            # The server answers 403 for an edit of a missing post too: ask whether it still exists.
            self.get_post(post_id)  # raises PostNotFound when it is gone
            raise Permanent(
                f"mattermost: the bot may not edit post {post_id} (403): it needs edit_post for its own posts"
                + _detail(answer, self._token)
            )
        error_id = _error_id(answer)
        if answer.status_code == 400 and error_id in NOT_EDITABLE_ERRORS:
            raise PostNotEditable(
                f"mattermost: post {post_id} can no longer be edited ({error_id})" + _detail(answer, self._token),
                ref=post_id,
            )
        raise self._failure(answer, f"edit post {post_id}")

    def get_post(self, post_id: str) -> MattermostPost:
        """`GET /posts/{id}`; raises `PostNotFound` when it does not exist (or was deleted)."""
        answer = self._call("GET", f"/posts/{quote(post_id, safe='')}")
        if _ok(answer):
            return _post(answer, "the post")
        if answer.status_code == 404:
            raise PostNotFound(f"mattermost: post {post_id} not found (404)", ref=post_id)
        raise self._failure(answer, f"read post {post_id}")

    # -- destinations -----------------------------------------------------------------------------

    def bot_user_id(self) -> str:
        """The bot's own user id (`GET /users/me`), asked once."""
        with self._lock:
            if self._bot_id is not None:
                return self._bot_id
        answer = self._call("GET", "/users/me")
        if not _ok(answer):
            raise self._failure(answer, "read its own user (users/me)")
        bot_id = _id(answer, "its own user")
        with self._lock:
            self._bot_id = bot_id
        return bot_id

    def resolve(self, destination: str) -> str:
        """The channel id of `team/channel` or `@user`, asked once and then cached. Raises
        `ChannelNotFound` when the team, channel or user does not exist, `Permanent` when the bot may
        not see it or `destination` is not written as either form."""
        with self._lock:
            known = self._channels.get(destination)
        if known is not None:
            return known
        try:
            target = parse_destination(destination)
        except ValueError as exc:
            raise Permanent(str(exc)) from None
        channel_id = self._team_channel(target) if isinstance(target, TeamChannel) else self._direct_channel(target)
        with self._lock:
            self._channels[destination] = channel_id
            self._names[channel_id] = str(target)
        return channel_id

    def forget(self, destination: str | None = None) -> None:
        """Drop a cached destination (all with None), e.g. after `ChannelNotFound` or a 403 on a channel
        that may have been re-created under the same name: the next `resolve` asks the server again."""
        with self._lock:
            if destination is None:
                self._channels.clear()
                self._names.clear()
                return
            channel_id = self._channels.pop(destination, None)
            if channel_id is not None:
                self._names.pop(channel_id, None)

    def _team_channel(self, target: TeamChannel) -> str:
        path = f"/teams/name/{quote(target.team, safe='')}/channels/name/{quote(target.channel, safe='')}"
        answer = self._call("GET", path)
        if _ok(answer):
            return _id(answer, f"channel {target}")
        if answer.status_code == 404:
            raise ChannelNotFound(
                f"mattermost: no channel {target} (404): check the team and channel names (as in the URL)",
                what="channel",
                ref=str(target),
            )
        if answer.status_code == 403:
            raise Permanent(
                f"mattermost: the bot may not see channel {target} (403): add it to the team and the channel"
                + _detail(answer, self._token)
            )
        raise self._failure(answer, f"look up channel {target}")

    def _direct_channel(self, target: DirectMessage) -> str:
        bot_id = self.bot_user_id()
        answer = self._call("GET", f"/users/username/{quote(target.username, safe='')}")
        if answer.status_code == 404:
            raise ChannelNotFound(f"mattermost: no user {target} (404)", what="user", ref=str(target))
        if not _ok(answer):
            raise self._failure(answer, f"look up user {target}")
        user_id = _id(answer, f"user {target}")
        answer = self._call("POST", "/channels/direct", [bot_id, user_id])
        if _ok(answer):
            return _id(answer, f"the direct channel with {target}")
        if answer.status_code == 403:
            raise Permanent(
                f"mattermost: the bot may not open a direct channel with {target} (403)" + _detail(answer, self._token)
            )
        raise self._failure(answer, f"open a direct channel with {target}")

    def _channel_name(self, channel_id: str) -> str:
        with self._lock:
            return self._names.get(channel_id, channel_id)

    # -- rate budget ------------------------------------------------------------------------------

    def delay(self) -> float:
        """Seconds until the next call fits the server's budget (0.0: now); takes nothing."""
        return self.budget.delay(self._clock())

    # -- transport --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: Any = None) -> Answer:
        wait = self.budget.reserve(self._clock(), self.max_budget_wait)
        if wait is None:
            after = self.budget.delay(self._clock())
            raise Retryable(f"mattermost rate budget spent: next call in {after:.1f} s", after=after)
        if wait > 0:
            self._sleep(wait)
        data = None if payload is None else json.dumps(payload).encode()
        headers = None if payload is None else {"Content-Type": "application/json"}
        try:
            answer = self.http.request(method, self.base + path, data, headers)
        except DeliveryError as exc:
            raise _scrubbed(exc, self._token) from None
        report = server_budget(_header_items(answer), self._clock())
        if report is not None:
            self.budget.observe(report)
        if answer.status_code == 429:
            asked = _wait_asked(answer)
            self.budget.hold(asked if asked is not None else 1.0, self._clock())
        return answer

    def _failure(self, answer: Answer, doing: str) -> DeliveryError:
        """The outcome of an answer the operation has no special meaning for."""
        status = answer.status_code
        if status == 401:
            return Permanent("mattermost refused the bot token (401)")
        reason = f"mattermost: could not {doing} (HTTP {status})" + _detail(answer, self._token)
        if status in RETRYABLE_STATUS or status >= 500:
            return Retryable(reason, after=_wait_asked(answer))
        if 200 <= status < 300:
            return Retryable(f"mattermost: could not {doing}: the answer (HTTP {status}) could not be read")
        return Permanent(reason)

    def close(self) -> None:
        self.http.close()


def _props(props: dict[str, Any] | None, attachments: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if props is None and attachments is None:
        return None
    merged = dict(props or {})
    if attachments is not None:
        merged["attachments"] = attachments
    return merged


def _ok(answer: Answer) -> bool:
    return 200 <= answer.status_code < 300


def _json(answer: Answer) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _post(answer: Answer, what: str) -> MattermostPost:
    try:
        return MattermostPost.from_json(_json(answer))
    except ValueError:
        # A 2xx that is not a post (a proxy's page): the post was most likely not made.
        raise Retryable(f"mattermost answered HTTP {answer.status_code} without {what}") from None


def _id(answer: Answer, what: str) -> str:
    data = _json(answer)
    if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"]:
        return str(data["id"])
    raise Retryable(f"mattermost answered HTTP {answer.status_code} without the id of {what}")


def _error_id(answer: Answer) -> str:
    data = _json(answer)
    return str(data.get("id") or "") if isinstance(data, dict) else ""


def _detail(answer: Answer, token: str) -> str:
    """`: <error id>: <message>` from Mattermost's JSON error (or a body excerpt), without the token."""
    data = _json(answer)
    if isinstance(data, dict) and (data.get("id") or data.get("message")):
        text = ": ".join(str(data[key]) for key in ("id", "message") if data.get(key))
    else:
        text = answer.text
    text = text[:EXCERPT].strip().replace("\n", " ")
    return f": {_scrub(text, token)}" if text else ""


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***")


def _scrubbed(exc: DeliveryError, token: str) -> DeliveryError:
    reason = _scrub(exc.reason, token)
    if isinstance(exc, Unreachable):
        return Unreachable(reason, after=exc.after)
    if isinstance(exc, Retryable):
        return Retryable(reason, after=exc.after)
    return Permanent(reason)


def _header_items(answer: Answer) -> dict[str, str]:
    names = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
    return {name: value for name in names if (value := answer.headers.get(name)) is not None}


def _wait_asked(answer: Answer) -> float | None:
    """The wait the server asked for: `Retry-After`, else for a 429 `X-RateLimit-Reset` (seconds until
    the budget is whole)."""
    after = retry_after(answer.headers.get("Retry-After"), time.time())
    if after is None and answer.status_code == 429:
        report = server_budget(_header_items(answer), 0.0)
        if report is not None and report.reset_after is not None:
            after = report.reset_after
    return after if after is None or math.isfinite(after) else None
