"""POST a JSON payload to a chat webhook whose URL is a secret, and classify the answer.

The webhook URL (its path is the key) must never reach a log or an error: `HttpClient` keeps it out
of connection errors, and here it is also cut out of answer bodies that quote it back (proxies'
and some servers' error pages do), before `classify` puts a body excerpt into the reason.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from delivery.http import HttpClient, classify
from delivery.outcomes import DeliveryError, Permanent, Retryable

MASK = "***"

# urllib3 logs every request line at DEBUG, webhook key included: never let it, whatever the log level.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


def post_json(
    http: HttpClient, url: SecretStr, payload: dict[str, Any], permanent_bodies: frozenset[str] = frozenset()
) -> None:
    """Deliver or raise `Retryable`/`Permanent`; JSON is ASCII-escaped, so any text makes a valid body."""
    secret_url = url.get_secret_value()
    body = json.dumps(payload).encode()
    try:
        response = http.post(secret_url, data=body, headers={"Content-Type": "application/json"})
        classify(response, permanent_bodies=permanent_bodies)
    except DeliveryError as exc:
        reason = scrub(exc.reason, secret_url)
        if isinstance(exc, Retryable):
            raise Retryable(reason, after=exc.after) from None
        raise Permanent(reason) from None


def scrub(text: str, secret_url: str) -> str:
    """`text` without the URL or its path (the key), in case a server quoted them back."""
    path = urlsplit(secret_url).path
    for secret in sorted({secret_url, path, path.strip("/")} - {"", "/"}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
