"""Slack Web API with a bot token (xoxb): chat.postMessage and chat.update on `slack_sdk.WebClient`.

`api_url` (default https://slack.com/api/) lets `alertq sink`, a test server or a proxy stand in. The
channel's `http` settings apply: its proxy (and only it: `HTTPS_PROXY` and friends in the worker's
environment are ignored, as for every alertq channel), its CA bundle or `verify_tls`, its timeouts.

slack_sdk's own retry handlers are switched off: by default it repeats a request once after a
connection error, and its rate-limit handler would sleep through 429s where nobody sees them. alertq's
runtime owns retries, so every answer becomes an outcome at once (`slack_outcome`):

- `ratelimited` / HTTP 429: `Retryable(after=Retry-After)`; Slack's own trouble (`internal_error`,
  `fatal_error`, `service_unavailable`, `request_timeout`, 5xx) and connection errors: `Retryable`;
- the token, the channel or the message refused (`invalid_auth`, `not_in_channel`, `invalid_blocks`, …):
  `Permanent` naming the cause, never the token;
- chat.update of a message that is gone (`message_not_found`, `cant_update_message`): `PostNotFound`,
  so a conversation posts a new root; `edit_window_closed`: `PostNotEditable`.

Texts and blocks are cut to Slack's limits before sending (`delivery.chat.limits`). Slack allows about
one message per second per channel and a per-minute budget for chat.update: each call takes a slot of
the matching `RateBudget` first, waits for it up to `max_budget_wait` seconds, or raises
`Retryable(after=…)` without calling, so alertq never provokes a 429 by sending too fast.
"""

from __future__ import annotations

import http.client
import logging
import math
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError

import certifi
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from delivery.chat.budget import RateBudget, retry_after
from delivery.chat.limits import SLACK_TEXT, clip_mrkdwn, fit_slack_attachments, fit_slack_blocks
from delivery.chat.outcomes import PostNotEditable, PostNotFound
from delivery.outcomes import DeliveryError, Permanent, Retryable, Unreachable
from schemas.channels import HttpSettings

SLACK_API_URL = "https://slack.com/api/"


class _WithoutTokens(logging.Filter):
    """Masks the bot tokens of every `SlackApi` in what slack_sdk logs (it quotes answer bodies that do
    not parse as JSON, and a proxy's error page may echo the request's headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = message
        for token in tuple(self.tokens):
            cleaned = cleaned.replace(token, "***")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# slack_sdk logs request and answer bodies at DEBUG (button values with signed ack tokens among them):
# its logger for alertq's clients stays at INFO whatever the root level is, and never shows a token.
SDK_LOG = logging.getLogger("alertq.slack_sdk")
SDK_LOG.setLevel(logging.INFO)
_TOKEN_MASK = _WithoutTokens()
SDK_LOG.addFilter(_TOKEN_MASK)

# Error codes → (outcome kind, cause). Kinds: "retry", "gone" (the message to edit or reply to),
# "not_editable", "permanent". `{channel}` is filled in; unknown codes are permanent.
TOKEN_ERRORS: dict[str, str] = {
    "invalid_auth": "slack refused the bot token (invalid_auth)",
    "not_authed": "slack got no bot token (not_authed)",
    "account_inactive": "the bot's Slack account is deactivated (account_inactive)",
    "token_revoked": "the bot token was revoked (token_revoked)",
    "token_expired": "the bot token expired (token_expired)",
    "not_allowed_token_type": "not a bot token (not_allowed_token_type): use the app's xoxb token",
    "missing_scope": "the bot token lacks a scope (missing_scope): the app needs chat:write",
    "no_permission": "the bot token may not do this (no_permission)",
    "ekm_access_denied": "the workspace's key management refused access (ekm_access_denied)",
    "team_access_not_granted": "the token has no access to this workspace (team_access_not_granted)",
    "access_denied": "slack denied access (access_denied)",
    "org_login_required": "the workspace is being migrated to an organisation (org_login_required)",
    "two_factor_setup_required": "the bot's account must set up two-factor authentication",
}
CHANNEL_ERRORS: dict[str, str] = {
    "channel_not_found": "slack channel {channel} not found (channel_not_found): use the channel's id "
    "(C…), and invite the app if the channel is private",
    "not_in_channel": "the bot is not a member of slack channel {channel} (not_in_channel): invite it "
    "(/invite @app) or give the app chat:write.public",
    "is_archived": "slack channel {channel} is archived (is_archived)",
    "channel_is_archived": "slack channel {channel} is archived (channel_is_archived)",
    "is_inactive": "slack channel {channel} is archived (is_inactive)",
    "restricted_action": "the workspace does not let the bot post in {channel} (restricted_action)",
    "restricted_action_read_only_channel": "slack channel {channel} is read-only for the bot",
    "restricted_action_thread_only_channel": "slack channel {channel} only allows thread replies",
    "restricted_action_non_threadable_channel": "slack channel {channel} does not allow threads",
    "team_not_found": "the channel's workspace was not found (team_not_found)",
}
MESSAGE_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_blocks_too_long",
        "msg_too_long",
        "too_many_attachments",
        "invalid_attachments",
        "no_text",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_form_data",
        "invalid_post_type",
        "missing_post_type",
        "invalid_json",
        "json_not_object",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "metadata_must_be_sent_from_app",
        "as_user_not_supported",
        "duplicate_message_not_found",
        "cannot_reply_to_message",
        "slack_connect_file_link_sharing_blocked",
        "method_deprecated",
        "deprecated_endpoint",
        "upgrade_required",
    }
)
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
RETRY_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)
GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "thread_not_found"})
NOT_EDITABLE_ERRORS = frozenset({"edit_window_closed"})

_NON_JSON = "Received a response in a non-JSON format"


@dataclass(frozen=True)
class SlackMessage:
    """What to keep of a posted message: `channel` (the id) and `ts` identify it for chat.update and are
    the `thread_ts` of replies; `thread_ts` is set on a reply (its root's ts)."""

    channel: str
    ts: str
    thread_ts: str | None = None


def slack_outcome(
    error: str,
    status: int,
    headers: Mapping[str, str],
    *,
    method: str,
    channel: str,
    ref: str | None = None,
    needed: str | None = None,
    detail: str | None = None,
    wall_now: float | None = None,
) -> DeliveryError:
    """What an error answer from `method` means for a delivery. `ref` is the ts of the message the call
    refers to (chat.update's `ts`, a reply's `thread_ts`), `needed` Slack's missing scope, `detail` the
    first of Slack's `response_metadata.messages` (which part of the blocks it refused)."""
    lower = {name.lower(): value for name, value in headers.items()}
    after = retry_after(lower.get("retry-after"), time.time() if wall_now is None else wall_now)
    if status == 429 or error in RATE_LIMIT_ERRORS:
        return Retryable(f"slack rate limit on {method} ({error or 'HTTP 429'})", after=after)
    if error.startswith(_NON_JSON) or not error:
        # No Slack answer at all: a proxy's or load balancer's page, or the wrong api_url.
        reason = f"slack answered {method} with HTTP {status} and no Slack error"
        if status >= 500 or status in (200, 408):
            return Retryable(reason, after=after)
        return Permanent(reason + " (is api_url right?)")
    if error in RETRY_ERRORS or status >= 500:
        return Retryable(f"slack could not do {method} now ({error})", after=after)
    if error in GONE_ERRORS and ref:
        return PostNotFound(f"slack message {ref} in {channel} is gone ({error})", ref=ref)
    if error in NOT_EDITABLE_ERRORS and ref:
        return PostNotEditable(f"slack message {ref} in {channel} can no longer be edited ({error})", ref=ref)
    if error in TOKEN_ERRORS:
        cause = TOKEN_ERRORS[error]
        if error == "missing_scope" and needed:
            cause += f" (needs {needed})"
        return Permanent(cause)
    if error in CHANNEL_ERRORS:
        return Permanent(CHANNEL_ERRORS[error].format(channel=channel))
    suffix = f": {detail}" if detail else ""
    if error in MESSAGE_ERRORS:
        return Permanent(f"slack refused the message for {channel} ({error}){suffix}")
    return Permanent(f"slack refused {method} for {channel} ({error}){suffix}")


def connection_outcome(exc: BaseException) -> DeliveryError | None:
    """What an exception from sending means; None for anything that is not about the connection (a bug).
    Messages name only the kind of error: never a URL, a proxy's credentials or the token."""
    if isinstance(exc, SlackRequestError):
        return Permanent("slack api_url is not an http(s) URL")
    if isinstance(exc, URLError):
        # Raised while connecting or sending (urllib wraps those only): the request was not taken.
        reason = exc.reason
        if isinstance(reason, ssl.SSLError | ssl.CertificateError):
            return Retryable(f"TLS error: {type(reason).__name__}")
        name = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        return Unreachable(f"connection failed: {name}")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Retryable(f"TLS error: {type(exc).__name__}")
    if isinstance(exc, TimeoutError):
        return Retryable("timed out")
    if isinstance(exc, ConnectionError):
        # Closed or reset before an answer came: counted as not got through, as alertq's HttpClient does.
        return Unreachable(f"connection failed: {type(exc).__name__}")
    if isinstance(exc, OSError | http.client.HTTPException):
        return Retryable(f"connection failed: {type(exc).__name__}")
    return None


class _OwnSettingsWebClient(WebClient):
    """`WebClient` whose requests go through one opener built from alertq's settings: the configured
    proxy or none. (WebClient itself falls back to the `*_PROXY` environment variables, and so does
    urllib's default opener, which it uses without a proxy.)"""

    def __init__(self, *, proxy: str | None, ssl_context: ssl.SSLContext, timeout: float, **kwargs: Any) -> None:
        super().__init__(proxy=proxy, ssl=ssl_context, timeout=math.ceil(timeout), **kwargs)
        self.proxy = proxy  # undo WebClient's fallback to the environment
        proxies = {"http": proxy, "https": proxy} if proxy else {}
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies), urllib.request.HTTPSHandler(context=ssl_context)
        )
        self._socket_timeout = timeout

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request) -> dict[str, Any]:
        if not url.lower().startswith(("http://", "https://")):
            raise SlackRequestError("Invalid URL detected")
        with self._opener.open(req, timeout=self._socket_timeout) as resp:
            charset = resp.headers.get_content_charset() or "utf-8"
            return {"status": resp.status, "headers": resp.headers, "body": resp.read().decode(charset, "replace")}


def tls_context(http: HttpSettings) -> ssl.SSLContext:
    """The CA bundle (or certifi's roots, as alertq's HttpClient uses), or no verification if so set."""
    context = ssl.create_default_context(cafile=str(http.ca_bundle) if http.ca_bundle else certifi.where())
    if not http.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SlackApi:
    """One Slack workspace, one bot token. Thread-safe."""

    def __init__(
        self,
        token: SecretStr | str,
        http: HttpSettings | None = None,
        api_url: str = SLACK_API_URL,
        *,
        post_per_second: float = 1.0,
        post_burst: int = 1,
        update_per_second: float = 50 / 60,
        update_burst: int = 5,
        max_budget_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not secret:
            raise ValueError("a Slack bot token is needed")
        self._token = secret
        _TOKEN_MASK.tokens.add(secret)
        settings = http or HttpSettings()
        self.client = _OwnSettingsWebClient(
            token=secret,
            base_url=api_url,
            proxy=settings.proxy.get_secret_value() if settings.proxy else None,
            ssl_context=tls_context(settings),
            timeout=max(settings.connect_timeout, settings.read_timeout),
            user_agent_prefix="alertq",
            logger=SDK_LOG,
            retry_handlers=[],  # alertq's runtime retries; a 429 must reach it, not be slept through
        )
        self.post_per_second = post_per_second
        self.post_burst = post_burst
        self.update_budget = RateBudget.for_server(update_per_second, update_burst)
        self.history_budget = RateBudget(50 / 60, 5)  # conversations.history: Tier 3
        self.max_budget_wait = max_budget_wait
        self._post_budgets: dict[str, RateBudget] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def post_message(
        self,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> SlackMessage:
        """chat.postMessage: a root, or with `thread_ts` (the root's ts) a reply in its thread. With
        blocks, `text` is the notification's fallback. `metadata` ({event_type, event_payload}) marks the
        message so that `find_marked` can find it again."""
        arguments: dict[str, Any] = {"channel": channel, "text": clip_mrkdwn(text, SLACK_TEXT)}
        if blocks is not None:
            arguments["blocks"] = fit_slack_blocks(blocks)
        if attachments is not None:
            arguments["attachments"] = fit_slack_attachments(attachments)
        if thread_ts:
            arguments["thread_ts"] = thread_ts
        if metadata is not None:
            arguments["metadata"] = metadata
        budget = self.post_budget(channel)
        data = self._call("chat.postMessage", self.client.chat_postMessage, arguments, budget, ref=thread_ts)
        return SlackMessage(str(data.get("channel") or channel), _ts(data, "chat.postMessage"), thread_ts)

    def update_message(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> SlackMessage:
        """chat.update of the message `ts` in `channel` (the id chat.postMessage answered). Slack keeps
        omitted `attachments` (`[]` removes them); omitted `blocks` only when `text` is omitted too, so
        pass the blocks again. Raises `PostNotFound` when the message is gone."""
        arguments: dict[str, Any] = {"channel": channel, "ts": ts, "text": clip_mrkdwn(text, SLACK_TEXT)}
        if blocks is not None:
            arguments["blocks"] = fit_slack_blocks(blocks)
        if attachments is not None:
            arguments["attachments"] = fit_slack_attachments(attachments)
        data = self._call("chat.update", self.client.chat_update, arguments, self.update_budget, ref=ts)
        return SlackMessage(str(data.get("channel") or channel), _ts(data, "chat.update"))

    def find_marked(self, channel: str, oldest: float, event_type: str, payload: dict[str, Any]) -> SlackMessage | None:
        """The newest message in `channel` since `oldest` (epoch seconds) whose metadata is `event_type`
        with `payload` (conversations.history, Tier 3): did a post whose answer was lost land?"""
        arguments: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{max(0.0, oldest - 1):.6f}",
            "limit": 200,
            "include_all_metadata": True,
        }
        data = self._call(
            "conversations.history", self.client.conversations_history, arguments, self.history_budget, ref=None
        )
        for message in data.get("messages") or []:
            marked = message.get("metadata") if isinstance(message, dict) else None
            if (
                isinstance(marked, dict)
                and marked.get("event_type") == event_type
                and marked.get("event_payload") == payload
            ):
                return SlackMessage(channel, str(message.get("ts")))
        return None

    def post_budget(self, channel: str) -> RateBudget:
        """The chat.postMessage budget of one channel (roots and replies share it)."""
        with self._lock:
            budget = self._post_budgets.get(channel)
            if budget is None:
                budget = self._post_budgets[channel] = RateBudget.for_server(self.post_per_second, self.post_burst)
            return budget

    def post_delay(self, channel: str) -> float:
        """Seconds until a message to `channel` fits the budget (0.0: now); takes nothing."""
        return self.post_budget(channel).delay(self._clock())

    def update_delay(self) -> float:
        """Seconds until an edit fits the chat.update budget (0.0: now); takes nothing."""
        return self.update_budget.delay(self._clock())

    def _call(
        self,
        method: str,
        send: Callable[..., Any],
        arguments: dict[str, Any],
        budget: RateBudget,
        *,
        ref: str | None,
    ) -> dict[str, Any]:
        channel = str(arguments["channel"])
        wait = budget.reserve(self._clock(), self.max_budget_wait)
        if wait is None:
            due = budget.delay(self._clock())
            raise Retryable(f"slack {method} budget for {channel} spent: next call in {due:.1f} s", after=due)
        if wait > 0:
            self._sleep(wait)
        try:
            response = send(**arguments)
        except SlackApiError as exc:
            outcome = self._refusal(exc, method, channel, ref)
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if exc.response.status_code == 429 or data.get("error") in RATE_LIMIT_ERRORS:
                after = outcome.after if isinstance(outcome, Retryable) else None
                budget.hold(after if after is not None else 1.0, self._clock())
            raise outcome from None
        except Exception as exc:
            failure = connection_outcome(exc)
            if failure is None:
                raise
            raise _scrubbed(failure, self._token) from None
        data = response.data
        return data if isinstance(data, dict) else {}

    def _refusal(self, exc: SlackApiError, method: str, channel: str, ref: str | None) -> DeliveryError:
        response = exc.response
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or "")
        metadata = data.get("response_metadata")
        messages = metadata.get("messages") if isinstance(metadata, dict) else None
        detail = str(messages[0])[:200] if isinstance(messages, list) and messages else None
        needed = data.get("needed")
        outcome = slack_outcome(
            error,
            response.status_code,
            {str(k): str(v) for k, v in (response.headers or {}).items()},
            method=method,
            channel=channel,
            ref=ref,
            needed=str(needed) if needed else None,
            detail=detail,
        )
        return _scrubbed(outcome, self._token)

    def close(self) -> None:
        """Nothing to release: urllib opens a connection per request."""


def _ts(data: dict[str, Any], method: str) -> str:
    ts = data.get("ts")
    if isinstance(ts, str) and ts:
        return ts
    # ok:true without a ts: nothing to thread on or edit later. Not retried: the message may be posted.
    raise Permanent(f"slack answered {method} without the message's ts")


def _scrubbed(outcome: DeliveryError, token: str) -> DeliveryError:
    if token not in outcome.reason:
        return outcome
    reason = outcome.reason.replace(token, "***")
    if isinstance(outcome, PostNotFound):
        return PostNotFound(reason, ref=outcome.ref)
    if isinstance(outcome, PostNotEditable):
        return PostNotEditable(reason, ref=outcome.ref)
    if isinstance(outcome, Unreachable):
        return Unreachable(reason, after=outcome.after)
    if isinstance(outcome, Retryable):
        return Retryable(reason, after=outcome.after)
    return Permanent(reason)
