"""Setting types that refuse, at load, what could only fail later: short signing secrets, URLs of the
wrong scheme or shape. Each refusal is one line naming what is expected.

A value may be a secret (a signing key, a webhook URL whose path is the key, a broker or database URL
with a password), so no message here repeats any part of it, not even the scheme: pydantic's location
names the setting, and that with the expected form is enough to fix it. The settings models set
`hide_input_in_errors` for the same reason.

An empty URL means "not set" (as an unset one: `ALERTQ_CHANNELS__SLACK__URL=` clears a URL from the
TOML file); an empty signing secret is an error, because an empty HMAC key signs as well as any other.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_core import PydanticCustomError

# The signing secrets are HMAC-SHA256 keys, and every signed button (or webhook body) a chat or a receiver
# holds lets anyone test guesses of the key offline, as fast as they can hash. 32 characters is what Slack
# issues (32 hex digits, 128 bits) and what `openssl rand -hex 16` prints: random, that is far beyond any
# search, while a short phrase a person made up is not. The hint suggests `-hex 32` (64) for margin.
# One minimum for all of them keeps the rule easy to state.
MIN_SECRET_LENGTH = 32


def _check_secret(value: SecretStr, hint: str) -> SecretStr:
    length = len(value.get_secret_value())
    if length == 0:
        raise PydanticCustomError(
            "secret_empty",
            "is set but empty; a signing secret needs at least {min} characters ({hint}), or leave it unset",
            {"min": MIN_SECRET_LENGTH, "hint": hint},
        )
    if length < MIN_SECRET_LENGTH:
        raise PydanticCustomError(
            "secret_too_short",
            "is shorter than {min} characters, short enough to guess from one signed message ({hint})",
            {"min": MIN_SECRET_LENGTH, "hint": hint},
        )
    return value


def _generated_secret(value: SecretStr) -> SecretStr:
    return _check_secret(value, "make one with: openssl rand -hex 32")


def _slack_secret(value: SecretStr) -> SecretStr:
    return _check_secret(value, "Slack's are 32 characters: copy it from the Slack app's Basic Information page")


SigningSecret = Annotated[SecretStr, AfterValidator(_generated_secret)]
"""An HMAC key alertq's operator makes up: `ack.signing_secret`, `channels.webhook.signing_secret`."""

SlackSigningSecret = Annotated[SecretStr, AfterValidator(_slack_secret)]
"""The Slack app's signing secret (`ack_listener.slack_signing_secret`, `sink.slack_signing_secret`)."""


def _empty_is_unset(value: Any) -> Any:
    if isinstance(value, str) and value == "":
        return None
    if isinstance(value, SecretStr) and value.get_secret_value() == "":
        return None
    return value


def split_list(value: Any) -> Any:
    """A list setting from the environment: a JSON list, or comma-separated items as people type them
    in env files (`a,b`); a list from TOML passes as it is."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _split(url: str) -> SplitResult | None:
    # Whitespace and control characters are never part of a working URL (a trailing newline from a
    # secrets file is the usual one); urlsplit would drop some of them silently.
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    try:
        return urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in an IPv6 host
        return None


def url_problem(url: str, schemes: tuple[str, ...], *, needs_host: bool = True) -> str | None:
    """What is wrong with `url` as a URL of one of `schemes`, in words that repeat none of it; or None."""
    parts = _split(url)
    if parts is None:
        return "is not a URL (spaces, control characters or brackets out of place)"
    if parts.scheme not in schemes or not url.lower().startswith(f"{parts.scheme}://"):
        return f"is not a URL starting with {' or '.join(f'{s}://' for s in schemes)}"
    if needs_host and not parts.hostname:
        return "has no host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # urlsplit gives None for no port; 0 here means there was one and it was not usable
        return "has a port that is not a number from 1 to 65535"
    return None


def _refuse(problem: str, expected: str) -> PydanticCustomError:
    return PydanticCustomError(
        "url_shape", "{problem}; expected {expected}", {"problem": problem, "expected": expected}
    )


def _check_url(url: str, schemes: tuple[str, ...], expected: str) -> None:
    problem = url_problem(url, schemes)
    if problem is not None:
        raise _refuse(problem, expected)


HTTP = ("http", "https")
_ENDPOINT = "an http(s) URL with a host, such as https://chat.example.org/hooks/<key> (not a bare key or path)"
_PAGE = "an http(s) URL with a host, such as https://oitc.example.org"
_PROXY = "a proxy URL such as http://proxy.example.org:3128 or http://user:password@proxy:3128 (SOCKS is not supported)"
_BROKER = "an amqp:// or amqps:// URL with a host, such as amqp://user:password@rabbitmq.example.org:5672/vhost"
_STATE_STORE = "sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user:password@host/db"


def _endpoint(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        _check_url(value.get_secret_value(), HTTP, _ENDPOINT)
    return value


def _page(value: str | None) -> str | None:
    if value is not None:
        _check_url(value, HTTP, _PAGE)
    return value


def _proxy(value: SecretStr | None) -> SecretStr | None:
    # delivery/http.py hands the proxy to urllib3's ProxyManager, which speaks to http and https proxies only.
    if value is not None:
        _check_url(value.get_secret_value(), HTTP, _PROXY)
    return value


def _required_endpoint(value: SecretStr) -> SecretStr:
    _check_url(value.get_secret_value(), HTTP, _ENDPOINT)
    return value


def _broker(value: SecretStr) -> SecretStr:
    _check_url(value.get_secret_value(), ("amqp", "amqps"), _BROKER)
    return value


def _broker_list(value: list[SecretStr]) -> list[SecretStr]:
    if not value:
        raise PydanticCustomError("no_broker", "is empty; expected at least {expected}", {"expected": _BROKER})
    return value


def _state_store(value: str) -> str:
    try:
        parts = urlsplit(value)  # not _split: a SQLite file's path may hold spaces
    except ValueError:
        raise _refuse("is not a URL", _STATE_STORE) from None
    scheme = parts.scheme
    if scheme == "sqlite":
        # sqlite:///var/alertq.db is the relative path var/alertq.db (state/store.py).
        if parts.netloc or not value.startswith("sqlite:///") or not PurePosixPath(parts.path[1:]).name:
            raise _refuse("is a sqlite URL that names no file or has a host", _STATE_STORE)
        return value
    if scheme in ("postgresql", "postgres"):
        # The host may be left out (a local socket), so only the scheme and port are checked.
        problem = url_problem(value, (scheme,), needs_host=False)
        if problem is not None:
            raise _refuse(problem, _STATE_STORE)
        return value
    raise _refuse("is neither a sqlite:// nor a postgresql:// URL", _STATE_STORE)


SecretHttpUrl = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset), AfterValidator(_endpoint)]
"""Where a channel POSTs (a secret: the path of a chat webhook is its key). Empty: not set."""

RequiredSecretHttpUrl = Annotated[SecretStr, AfterValidator(_required_endpoint)]
"""An endpoint that must be given where it appears (the values of `channels.webhook.urls`)."""

PlainHttpUrl = Annotated[str | None, BeforeValidator(_empty_is_unset), AfterValidator(_page)]
"""A public http(s) URL that is no secret: UI links, icons, the ack listener's address. Empty: not set."""

ProxyUrl = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset), AfterValidator(_proxy)]
"""An HTTP proxy (may hold credentials). Empty: no proxy."""


def _bot_token(value: SecretStr | None) -> SecretStr | None:
    # A token pasted from a file often ends in a newline: sent as it is, the chat refuses it as unknown.
    if value is not None and any(ch.isspace() or ord(ch) < 0x20 for ch in value.get_secret_value()):
        raise PydanticCustomError(
            "token_shape", "holds spaces or line breaks; expected the bot token alone (copied without a newline)"
        )
    return value


BotToken = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset), AfterValidator(_bot_token)]
"""A chat bot's token (Mattermost bot or personal access token, Slack xoxb-…): a secret. Empty: not set."""

BrokerUrl = Annotated[SecretStr, AfterValidator(_broker)]
BrokerUrls = AfterValidator(_broker_list)
StateStoreUrl = Annotated[str, AfterValidator(_state_store)]
