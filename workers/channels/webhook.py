"""Generic webhook: POST the event JSON as it came, for SMS gateways and anything else that takes HTTP.

Request: `POST <url>`, `Content-Type: application/json`, body = the `alertq.alert/1` message exactly
as it was queued, `X-Alertq-Event-Id: <event_id>`, and with `signing_secret` set an HMAC-SHA256 of
the exact body in `signature_header` as `sha256=<hex>` (GitHub's scheme: the receiver recomputes it
over the raw body it read and compares in constant time).

Targets: `url` takes every event; `urls` maps contact names to their own endpoints (one SMS gateway
per team, say), so an event for contact `sms-team` goes to `urls["sms-team"]`. Each URL is its own
target for rate limits and lanes, named by a short hash: URLs carry secrets and never reach logs.
"""

from __future__ import annotations

import hashlib
import hmac

from delivery.http import HttpClient
from delivery.outcomes import Permanent
from schemas.alert import AlertEvent
from schemas.channels import ChannelSettings, WebhookSettings
from workers.channels.base import Notifier

EVENT_ID_HEADER = "X-Alertq-Event-Id"


def url_key(url: str) -> str:
    """A stable name for a URL that gives nothing of it away."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:12]


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier(Notifier):
    name = "webhook"

    def __init__(self, settings: ChannelSettings) -> None:
        if not isinstance(settings, WebhookSettings):
            raise TypeError("the webhook channel needs WebhookSettings")
        super().__init__(settings)
        self.config = settings
        self.client = HttpClient(settings.http, user_agent="alertq-webhook")

    def url_for(self, event: AlertEvent) -> str | None:
        name = event.contact.name if event.contact is not None else None
        if name is not None and name in self.config.urls:
            return self.config.urls[name].get_secret_value()
        return self.config.url.get_secret_value() if self.config.url is not None else None

    def target(self, event: AlertEvent) -> str:
        url = self.url_for(event)
        return url_key(url) if url is not None else "webhook-none"

    def send(self, event: AlertEvent, body: bytes | None = None) -> None:
        body = event.to_json() if body is None else body
        url = self.url_for(event)
        if url is None:
            contact = event.contact.name if event.contact is not None else None
            raise Permanent(f"no webhook URL for contact {contact!r} and channels.webhook.url is not set")
        headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event.event_id}
        if self.config.signing_secret is not None:
            headers[self.config.signature_header] = signature(self.config.signing_secret.get_secret_value(), body)
        self.client.post(url, body, headers)

    def close(self) -> None:
        self.client.close()
