"""Generic webhook: POST the event JSON as it came, for SMS gateways and anything else that takes HTTP.

Request: `POST <url>`, `Content-Type: application/json`, body = the `alertq.alert/1` message exactly
as it was queued, `X-Alertq-Event-Id: <event_id>`, and with `signing_secret` set an HMAC-SHA256 of
the exact body in `signature_header` as `sha256=<hex>` (GitHub's scheme: the receiver recomputes it
over the raw body it read and compares in constant time).

Targets: `url` takes every event; `urls` maps contact names to their own endpoints (one SMS gateway
per team, say), so an event for contact `sms-team` goes to `urls["sms-team"]`. Each URL is its own
target for rate limits and lanes, named by a short hash: URLs carry secrets and never reach logs.

With `fold` on, a storm for one URL (more events waiting than `rate_limit` lets out within 2 s, the
chats' rule, workers/folds.py `StormRule`) goes as one request per 100 events: `alertq.digest/1`,
`{"schema", "headline", "count", "events": [the alertq.alert/1 events]}`, signed as any body. Every
contact's event is in it (an SMS gateway texts each); `X-Alertq-Digest` carries the count. Off (the
default), one request per event.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from delivery.http import HttpClient
from delivery.outcomes import DeliveryError, Permanent
from schemas.alert import AlertEvent
from schemas.channels import ChannelSettings, FoldSettings, WebhookSettings
from workers.channels.base import Notifier
from workers.folds import NO_HOLD, Hold, StormRule, hold_of

EVENT_ID_HEADER = "X-Alertq-Event-Id"
DIGEST_HEADER = "X-Alertq-Digest"
DIGEST_SCHEMA = "alertq.digest/1"
FOLD = FoldSettings()  # the chats' defaults: window, hold, events per request


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
        rate = settings.rate_limit
        self.rule = StormRule(rate.per_second, rate.burst, FOLD) if settings.fold else None

    def url_for(self, event: AlertEvent) -> str | None:
        name = event.contact.name if event.contact is not None else None
        if name is not None and name in self.config.urls:
            return self.config.urls[name].get_secret_value()
        return self.config.url.get_secret_value() if self.config.url is not None else None

    def target(self, event: AlertEvent) -> str:
        url = self.url_for(event)
        return url_key(url) if url is not None else "webhook-none"

    def paces_itself(self, event: AlertEvent) -> bool:
        return self.rule is not None  # folding: the storm rule's budget paces every request

    def may_fold(self, event: AlertEvent) -> bool:
        return self.rule is not None

    def fold_hold(self) -> Hold:
        return hold_of(FOLD) if self.rule is not None else NO_HOLD

    def fold(self, events: list[AlertEvent]) -> dict[str, object] | None:
        if self.rule is None or not events:
            return None
        target = self.target(events[0])  # a lane is one target: one URL
        url = self.url_for(events[0])
        if url is None or not self.rule.worth_folding(target, len(events)):
            return None  # no URL: each is dead-lettered on its own, with the reason
        from workers.conversations import digest  # the chats' headline; loaded only when folding
        from workers.conversations.store import State

        outcomes: dict[str, object] = {}
        for start in range(0, len(events), FOLD.max_items):
            chunk = events[start : start + FOLD.max_items]
            lines = tuple(digest.Line(e, State.OPEN, None, None) for e in chunk)
            body = (
                b'{"schema":"%s","headline":%s,"count":%d,"events":['
                % (
                    DIGEST_SCHEMA.encode(),
                    json.dumps(digest.headline(digest.PartView(lines, 0, 1))).encode(),
                    len(chunk),
                )
                + b",".join(e.to_json() for e in chunk)
                + b"]}"
            )
            self.rule.pace(target)
            try:
                self._post(url, body, {DIGEST_HEADER: str(len(chunk))})
            except DeliveryError as exc:
                outcomes.update({e.event_id: exc for e in chunk})
                continue
            outcomes.update({e.event_id: None for e in chunk})
        return outcomes

    def send(self, event: AlertEvent, body: bytes | None = None) -> None:
        body = event.to_json() if body is None else body
        url = self.url_for(event)
        if url is None:
            contact = event.contact.name if event.contact is not None else None
            raise Permanent(f"no webhook URL for contact {contact!r} and channels.webhook.url is not set")
        if self.rule is not None:
            self.rule.pace(self.target(event))
        self._post(url, body, {EVENT_ID_HEADER: event.event_id})

    def _post(self, url: str, body: bytes, extra: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", **extra}
        if self.config.signing_secret is not None:
            headers[self.config.signature_header] = signature(self.config.signing_secret.get_secret_value(), body)
        self.client.post(url, body, headers)

    def close(self) -> None:
        self.client.close()
