"""Outbound HTTP for channels, and the one classifier of answers (Alertmanager's `notify.Retrier`).

Every channel posts through `HttpClient`: timeouts always, TLS verification on (optionally against a
CA bundle for self-signed servers), an optional proxy per channel. `classify` turns an answer into
the runtime's outcome: 2xx delivered; 408/425/429/5xx retryable (429/503 with `Retry-After`);
other 4xx permanent. Errors never carry the URL: webhook URL paths are secrets.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import requests

from schemas.channels import HttpSettings
from workers.channels.base import Permanent, Retryable, Unreachable

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
BODY_EXCERPT = 200


class HttpClient:
    def __init__(self, settings: HttpSettings, user_agent: str = "alertq") -> None:
        self.settings = settings
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        # Only the channel's own proxy setting counts: a stray HTTPS_PROXY in a worker's environment
        # must not reroute notifications (trust_env also reads .netrc, which we never want here).
        self.session.trust_env = False
        if settings.proxy is not None:
            proxy = settings.proxy.get_secret_value()
            self.session.proxies = {"http": proxy, "https": proxy}
        self.verify: bool | str = str(settings.ca_bundle) if settings.ca_bundle else settings.verify_tls

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        """POST and return the answer; connection errors and timeouts become `Retryable`."""
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """GET and return the answer; errors as for `post`."""
        return self.request("GET", url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(
                method,
                url,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                verify=self.verify,
                allow_redirects=False,
                **kwargs,
            )
        except requests.exceptions.SSLError as exc:
            raise Retryable(f"TLS error: {_without_url(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            # Refused, reset or connect timeout: the request never got through, safe to repeat at once.
            raise Unreachable(f"connection failed: {_without_url(exc)}") from None
        except requests.exceptions.Timeout:
            raise Retryable("timed out") from None
        except requests.exceptions.RequestException as exc:
            raise Retryable(f"connection failed: {_without_url(exc)}") from None

    def close(self) -> None:
        self.session.close()


def _without_url(exc: Exception) -> str:
    # requests puts the full URL (with the webhook key) into many messages: name only the kind.
    root: BaseException = exc
    while root.__context__ is not None and root.__context__ is not root:
        root = root.__context__
    return type(root).__name__


def retry_after(response: requests.Response) -> float | None:
    """Seconds the server asks us to wait: `Retry-After` as seconds or as an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(response: requests.Response, permanent_bodies: frozenset[str] = frozenset()) -> None:
    """Return for a 2xx answer, else raise `Retryable` or `Permanent` naming status and body excerpt.

    `permanent_bodies` lets a channel mark error strings permanent whatever the status (Slack's
    `channel_is_archived`, …)."""
    if 200 <= response.status_code < 300:
        return
    excerpt = response.text[:BODY_EXCERPT].strip().replace("\n", " ")
    reason = f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else "")
    if excerpt in permanent_bodies:
        raise Permanent(reason)
    if response.status_code in RETRYABLE_STATUS:
        raise Retryable(reason, after=retry_after(response))
    raise Permanent(reason)
