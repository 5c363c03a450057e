"""Outbound HTTP, and the one classifier of answers (Alertmanager's `notify.Retrier`).

Every endpoint alertq talks HTTP to goes through `HttpClient`: the channels' webhooks, the chat
replies of the ack listener and forwarder, the monitoring cores' APIs. Timeouts always, TLS
verification on (optionally against a CA bundle for self-signed servers), an optional proxy. `post`,
`post_json` and `get` send and classify (`classify`): 2xx returns the answer; 408/425/429/5xx raise
`Retryable` (429/503 with `Retry-After`); other 4xx `Permanent`. `request` sends without classifying,
for the few callers that read a status themselves. Errors never carry the URL: webhook URL paths and
Slack's response_url are secrets, so a body that quotes the URL back has it masked too.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

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

from delivery import http_wire
from delivery.outcomes import DeliveryError, Permanent, Retryable, Unreachable
from schemas.channels import HttpSettings

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
BODY_EXCERPT = 200
MASK = "***"

# urllib3 logs every request line at DEBUG, webhook key included: never let it, whatever the log level.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


class Headers(Protocol):
    """Case-insensitive header lookup (http.client's HTTPMessage, urllib3's HTTPHeaderDict)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class Answer:
    """What `classify` needs of an HTTP answer."""

    status_code: int
    text: str
    headers: Headers

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.text)


class HttpClient:
    """A delivery is one POST on a kept-alive connection, and it was the largest part of a delivery's CPU.
    So without a proxy (the usual case) each thread keeps its own connection per server
    (`http_wire.Connection`: one write per request, a lean answer parser): no pool to look up and
    lock, no response wrapper. Per request that is about 20 us of CPU where urllib3's PoolManager took
    about 200 us and http.client alone 70 us (requests, before all of them, 600 us). A connection the
    server has closed meanwhile (keep-alive timeout) is noticed before it is reused. With a proxy,
    urllib3's ProxyManager does the work (CONNECT tunnels, TLS to an https proxy)."""

    def __init__(
        self, settings: HttpSettings, user_agent: str = "alertq", headers: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.headers = {"User-Agent": user_agent, **(headers or {})}
        # certifi, as requests used: the same trusted roots whatever the system's store holds.
        ca_certs = str(settings.ca_bundle) if settings.ca_bundle else certifi.where()
        # Only the channel's own proxy setting counts: a stray HTTPS_PROXY in a worker's environment
        # must not reroute notifications (neither http_wire nor urllib3 reads the environment).
        self.pool: urllib3.ProxyManager | None = None
        if settings.proxy is not None:
            timeout = urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout)
            tls: dict[str, Any] = (
                {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_certs}
                if settings.verify_tls
                else {"cert_reqs": "CERT_NONE"}
            )
            proxy = urllib3.util.parse_url(settings.proxy.get_secret_value())
            auth = urllib3.make_headers(proxy_basic_auth=proxy.auth) if proxy.auth else None
            self.pool = urllib3.ProxyManager(
                proxy._replace(auth=None).url, proxy_headers=auth, timeout=timeout, retries=False, **tls
            )
        self._tls = ssl.create_default_context(cafile=ca_certs)
        if not settings.verify_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._local = threading.local()  # .connections: {(scheme, host, port): http_wire.Connection}
        self._all: list[http_wire.Connection] = []  # every connection made, for close()
        self._all_lock = threading.Lock()

    def request(
        self, method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Answer:
        """Send and return the answer; connection errors and timeouts become `Retryable`."""
        merged = {**self.headers, **headers} if headers else self.headers
        if self.pool is not None:
            return self._via_proxy(method, url, data, merged)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Permanent("not an http(s) URL")
        try:
            port = parts.port
        except ValueError:
            raise Permanent("not an http(s) URL: bad port") from None
        connection = self._connection(parts.scheme, parts.hostname, port)
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        try:
            response = connection.exchange(method, target, merged, data)
        except Exception as exc:
            connection.close()  # in an unknown state: the next request opens a new one
            failure = _failure(exc)
            if failure is None:
                raise
            raise failure from None
        return Answer(response.status, response.body.decode("utf-8", "replace"), response.headers)

    def _connection(self, scheme: str, host: str, port: int | None) -> http_wire.Connection:
        """This thread's connection to the server, connected: a dropped one is replaced."""
        connections: dict[tuple[str, str, int | None], http_wire.Connection] | None = getattr(
            self._local, "connections", None
        )
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get((scheme, host, port))
        if connection is None:
            https = scheme == "https"
            connection = http_wire.Connection(
                host,
                port or (443 if https else 80),
                self.settings.connect_timeout,
                self.settings.read_timeout,
                self._tls if https else None,
            )
            connections[(scheme, host, port)] = connection
            with self._all_lock:
                self._all.append(connection)
        try:
            connection.ready()
        except Exception as exc:
            connection.close()
            if isinstance(exc, ssl.SSLError | ssl.CertificateError):
                raise Retryable(f"TLS error: {_without_url(exc)}") from None
            # Refused, unresolvable, connect timeout: nothing was sent, safe to repeat at once.
            raise Unreachable(f"connection failed: {_without_url(exc)}") from None
        return connection

    def _via_proxy(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> Answer:
        assert self.pool is not None
        try:
            response = self.pool.request(method, url, body=data, headers=headers, redirect=False)
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

    def post(
        self, url: str, data: bytes, headers: Mapping[str, str], permanent_bodies: frozenset[str] = frozenset()
    ) -> Answer:
        """POST and classify: the 2xx answer, or `Retryable`/`Permanent` (see `classify`)."""
        answer = self.request("POST", url, data, headers)
        classify(answer, permanent_bodies, url)
        return answer

    def post_json(
        self,
        url: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        permanent_bodies: frozenset[str] = frozenset(),
    ) -> Answer:
        """`post` of `payload` as JSON; ASCII-escaped, so any text makes a valid body."""
        body = json.dumps(payload).encode()
        return self.post(url, body, {"Content-Type": "application/json", **(headers or {})}, permanent_bodies)

    def get(self, url: str, params: Mapping[str, str] | None = None) -> Answer:
        """GET and classify, like `post`."""
        answer = self.request("GET", f"{url}?{urlencode(params)}" if params else url)
        classify(answer, url=url)
        return answer

    def close(self) -> None:
        """At shutdown, once no thread sends any more."""
        with self._all_lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
        if self.pool is not None:
            self.pool.clear()


def _failure(exc: Exception) -> DeliveryError | None:
    """What an exception while sending or reading means (on a connected socket); None: a bug."""
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Retryable(f"TLS error: {_without_url(exc)}")
    if isinstance(exc, TimeoutError):
        return Retryable("timed out")
    if isinstance(exc, ConnectionError):
        # Reset or closed before an answer came (RemoteDisconnected is one): as urllib3 does, count it
        # as not got through, safe to repeat at once.
        return Unreachable(f"connection failed: {_without_url(exc)}")
    if isinstance(exc, OSError | http.client.HTTPException):
        return Retryable(f"connection failed: {_without_url(exc)}")
    if isinstance(exc, ValueError):  # a header value with CR/LF in it, refused before sending
        return Permanent(f"request not sendable: {type(exc).__name__}")
    return None


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


def classify(response: Answer, permanent_bodies: frozenset[str] = frozenset(), url: str = "") -> None:
    """Return for a 2xx answer, else raise `Retryable` or `Permanent` naming status and body excerpt.

    `permanent_bodies` lets a channel mark error strings permanent whatever the status (Slack's
    `channel_is_archived`, …). `url`, and its path, are masked in the excerpt: proxies' and some
    servers' error pages quote the request's URL back, and its path may be a webhook key."""
    if 200 <= response.status_code < 300:
        return
    excerpt = response.text[:BODY_EXCERPT].strip().replace("\n", " ")
    reason = f"HTTP {response.status_code}" + (f": {mask(excerpt, url)}" if excerpt else "")
    if excerpt in permanent_bodies:
        raise Permanent(reason)
    if response.status_code in RETRYABLE_STATUS:
        raise Retryable(reason, after=retry_after(response))
    raise Permanent(reason)


def mask(text: str, url: str) -> str:
    """`text` without `url` or its path (the key), in case a server quoted them back."""
    if not url:
        return text
    path = urlsplit(url).path
    for secret in sorted({url, path, path.strip("/")} - {"", "/"}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
