"""Outbound HTTP for channels, and the one classifier of answers (Alertmanager's `notify.Retrier`).

Every channel posts through `HttpClient` (urllib3): timeouts always, TLS verification on (optionally against a
CA bundle for self-signed servers), an optional proxy per channel. `classify` turns an answer into
the runtime's outcome: 2xx delivered; 408/425/429/5xx retryable (429/503 with `Retry-After`);
other 4xx permanent. Errors never carry the URL: webhook URL paths are secrets.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from schemas.channels import HttpSettings
from workers.channels.base import Permanent, Retryable, Unreachable

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
BODY_EXCERPT = 200


@dataclass(frozen=True)
class Answer:
    """What `classify` needs of an HTTP answer."""

    status_code: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.text)


class HttpClient:
    """urllib3 directly, not requests: a delivery is one POST on a kept-alive connection, and requests'
    per-call machinery (settings merge, cookies, hooks) cost more CPU than the rest of a delivery
    (about 0.4 ms of 1.2 ms per message in `tests/perf/test_worker_bench.py`)."""

    def __init__(
        self, settings: HttpSettings, user_agent: str = "alertq", headers: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.headers = {"User-Agent": user_agent, **(headers or {})}
        timeout = urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout)
        # certifi, as requests used: the same trusted roots whatever the system's store holds.
        ca_certs = str(settings.ca_bundle) if settings.ca_bundle else certifi.where()
        tls: dict[str, Any] = (
            {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_certs} if settings.verify_tls else {"cert_reqs": "CERT_NONE"}
        )
        # Only the channel's own proxy setting counts: a stray HTTPS_PROXY in a worker's environment
        # must not reroute notifications (urllib3 never reads the environment).
        self.pool: urllib3.PoolManager
        if settings.proxy is not None:
            proxy = urllib3.util.parse_url(settings.proxy.get_secret_value())
            auth = urllib3.make_headers(proxy_basic_auth=proxy.auth) if proxy.auth else None
            self.pool = urllib3.ProxyManager(
                proxy._replace(auth=None).url, proxy_headers=auth, timeout=timeout, retries=False, **tls
            )
        else:
            self.pool = urllib3.PoolManager(timeout=timeout, retries=False, **tls)

    def request(
        self, method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Answer:
        """Send and return the answer; connection errors and timeouts become `Retryable`."""
        try:
            response = self.pool.request(
                method, url, body=data, headers={**self.headers, **(headers or {})}, redirect=False
            )
        except SSLError as exc:
            raise Retryable(f"TLS error: {_without_url(exc)}") from None
        except (ConnectTimeoutError, ProxyError, ProtocolError) as exc:
            # Refused, reset or connect timeout (NewConnectionError is a ConnectTimeoutError): the
            # request never got through, safe to repeat at once.
            raise Unreachable(f"connection failed: {_without_url(exc)}") from None
        except ReadTimeoutError:
            raise Retryable("timed out") from None
        except HTTPError as exc:
            raise Retryable(f"connection failed: {_without_url(exc)}") from None
        text = response.data.decode("utf-8", "replace")
        return Answer(response.status, text, response.headers)

    def post(self, url: str, data: bytes, headers: Mapping[str, str]) -> Answer:
        return self.request("POST", url, data, headers)

    def get(self, url: str, params: Mapping[str, str] | None = None) -> Answer:
        return self.request("GET", f"{url}?{urlencode(params)}" if params else url)

    def post_json(self, url: str, payload: Any, headers: Mapping[str, str] | None = None) -> Answer:
        return self.post(url, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def close(self) -> None:
        self.pool.clear()


def _without_url(exc: Exception) -> str:
    # urllib3 puts the full URL (with the webhook key) into many messages: name only the kind.
    root: BaseException = exc
    while root.__context__ is not None and root.__context__ is not root:
        root = root.__context__
    return type(root).__name__


def retry_after(response: Answer) -> float | None:
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


def classify(response: Answer, permanent_bodies: frozenset[str] = frozenset()) -> None:
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
