"""Fuzzing both endpoints of a running `alertq ack-listener` process with hypothesis.

Bodies and headers range from random bytes through arbitrary JSON and forms to click-shaped requests
with mutated fields, genuine and tampered button tokens, good, wrong and garbage Slack signatures and
deeply nested JSON. Every answer must be below 500 (configured listener, broker up: nothing is the
server's fault), every refusal a one-line JSON `{"error": …}` without a secret, and the ack queue must
grow by exactly one for each accepted click and by nothing for a refused one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pika
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertq.sink.actions import slack_signature
from broker import names
from schemas.ack_token import sign_incident
from schemas.actions import ACTIONS, Action
from schemas.settings import Settings
from tests.support.ack_processes import SIGNING_SECRET, SLACK_SECRET, ack_listener
from tests.support.rabbit import free_port

EXAMPLES = 300  # per endpoint: bounded so the suite stays quick on a shared 2-core machine
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Any text, lone surrogates included (a JSON body can carry them as \udXXX escapes).
# (st.text leaves surrogates out even when its alphabet has them, so the strings are joined by hand.)
any_text = st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=40).map("".join)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
# Headers as an HTTP client can send them: latin-1, no leading space, no line breaks.
header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x85\xa0"), max_size=60)


def genuine_token(service: bool = True, action: Action = "acknowledge") -> str:
    # A button of its own each time: a second click of one button is answered without queueing again.
    return sign_incident(
        SIGNING_SECRET,
        host_id="web01",
        service_id="disk" if service else None,
        event_id=f"e-fuzz-{uuid.uuid4()}",
        now=time.time(),
        ttl=3600,
        action=action,
        snooze="until 08:00" if action == "snooze" else None,
    )


def _tampered(token: str, position: int, char: str) -> str:
    index = position % len(token)
    return token[:index] + char + token[index + 1 :]


actions = st.sampled_from(ACTIONS)
tokens = (
    st.builds(genuine_token, st.booleans(), actions)
    | st.builds(_tampered, st.builds(genuine_token, st.booleans(), actions), st.integers(0, 500), st.characters())
    | st.builds(
        lambda: sign_incident("another-secret-entirely", host_id="h", service_id=None, event_id="e", now=0, ttl=1)
    )
    | st.builds(lambda: sign_incident(SIGNING_SECRET, host_id="h", service_id="s", event_id="e", now=0, ttl=1))
    | any_text
    | json_values
)


def deeply_nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


nested_json = st.builds(deeply_nested, st.integers(500, 20_000), st.sampled_from(["list", "dict"]))


def _optional(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | value


def genuine_mattermost_click(user_name: Any, channel_name: Any, post_id: Any) -> str:
    """A click with a genuine token and fuzzed other fields: it gets past every check but theirs."""
    body = {"user_name": user_name, "channel_name": channel_name, "post_id": post_id}
    return json.dumps({**body, "context": {"action": "ack", "token": genuine_token()}})


mattermost_clicks = st.fixed_dictionaries(
    {},
    optional={
        "user_name": st.just("jdoe") | any_text | json_values,
        "user_id": any_text,
        "channel_name": any_text | json_values,
        "post_id": any_text | json_values,
        "type": st.just("button") | any_text,
        "context": st.fixed_dictionaries({"action": st.just("ack") | any_text, "token": tokens}) | json_values,
    },
)
mattermost_bodies = (
    st.binary(max_size=2000)
    | json_values.map(json.dumps)
    | mattermost_clicks.map(json.dumps)
    | nested_json
    | st.builds(genuine_mattermost_click, any_text | json_values, any_text | json_values, any_text | json_values)
)

slack_payloads = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("block_actions") | any_text | json_values,
        "user": st.fixed_dictionaries({}, optional={"username": any_text | json_values, "name": any_text})
        | json_values,
        "actions": st.lists(
            st.fixed_dictionaries(
                {}, optional={"action_id": st.just("alertq_ack") | any_text, "value": tokens | json_values}
            )
            | json_values,
            max_size=3,
        )
        | json_values,
        "response_url": st.just("not a url") | any_text | json_values,
    },
)


def _slack_form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def _nested_form(nested: str) -> bytes:
    return urlencode({"payload": nested}).encode()


def genuine_slack_click(user_name: Any, response_url: Any) -> bytes:
    """A click with a genuine token and fuzzed user and response_url."""
    action = {"action_id": "alertq_ack", "value": genuine_token()}
    user = {"username": user_name, "id": "U1"}
    return _slack_form({"type": "block_actions", "user": user, "actions": [action], "response_url": response_url})


def _good_click(token: str) -> bytes:
    return _slack_form(
        {
            "type": "block_actions",
            "user": {"username": "jdoe"},
            "actions": [{"action_id": "alertq_ack", "value": token}],
        }
    )


slack_bodies = (
    st.binary(max_size=2000)
    | slack_payloads.map(_slack_form)
    | json_values.map(_slack_form)
    | st.dictionaries(any_text, any_text, max_size=4).map(lambda d: urlencode(d, errors="surrogatepass").encode())
    | nested_json.map(_nested_form)
    | tokens.map(lambda t: _good_click(t if isinstance(t, str) else json.dumps(t)))
    | st.builds(genuine_slack_click, any_text | json_values, st.just("not a url") | any_text | json_values)
)
# Mostly genuine, so most bodies get past the signature to the parser behind it.
signing = st.one_of(
    st.just("genuine"),
    st.just("genuine"),
    st.sampled_from(["none", "wrong-secret", "stale"]),
    st.tuples(_optional(header_text), _optional(header_text)),
)
content_types = _optional(
    st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])
    | header_text
)


def slack_headers(body: bytes, how: Any) -> dict[str, str]:
    if how == "genuine":
        return slack_signature(SLACK_SECRET, body)
    if how == "wrong-secret":
        return slack_signature("not-the-slack-secret-at-all", body)
    if how == "stale":
        return slack_signature(SLACK_SECRET, body, now=time.time() - 3600)
    if how == "none":
        return {}
    timestamp, signature = how
    garbage = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    return {k: v for k, v in garbage.items() if v is not None}


class Probe:
    """Sends one request and checks the answer and the ack queue's depth before and after."""

    def __init__(self, url: str, amqp_url: str) -> None:
        self.url = url
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.connection.channel()
        self.statuses: Counter[int] = Counter()

    def depth(self) -> int:
        return int(self.channel.queue_declare(names.ACKS_QUEUE, passive=True).method.message_count)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        before = self.depth()
        answer = requests.post(self.url + path, data=body, headers=headers, timeout=30)
        self.statuses[answer.status_code] += 1
        shown = f"{path} {answer.status_code} {answer.text[:300]!r} for {body[:200]!r} {headers}"
        assert answer.status_code < 500, shown
        for secret in (SIGNING_SECRET, SLACK_SECRET):
            assert secret not in answer.text, shown
        # Published with confirms before the answer: the queue already holds an accepted ack.
        grew = self.depth() - before
        if 200 <= answer.status_code < 300:
            assert grew == 1, f"accepted but {grew} acks queued: {shown}"
        else:
            assert grew == 0, f"refused but {grew} acks queued: {shown}"
            error = answer.json()
            assert isinstance(error, dict) and isinstance(error.get("error"), str), shown
            assert "\n" not in error["error"], shown

    def close(self) -> None:
        self.connection.close()


def test_fuzzed_clicks_never_get_a_5xx_and_only_accepted_ones_are_queued(
    declared: Settings, amqp_url: str, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "listener.log"
    with ack_listener(alertq_env, log, free_port(), slack_signing_secret=SLACK_SECRET) as listener:
        probe = Probe(listener.url, amqp_url)

        @FUZZ
        @given(body=mattermost_bodies, content_type=content_types)
        def mattermost(body: str | bytes, content_type: str | None) -> None:
            raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
            probe.post("/mattermost/actions", raw, {"Content-Type": content_type} if content_type else {})

        @FUZZ
        @given(body=slack_bodies, how=signing, content_type=content_types)
        def slack(body: bytes, how: Any, content_type: str | None) -> None:
            headers = slack_headers(body, how)
            if content_type:
                headers["Content-Type"] = content_type
            probe.post("/slack/actions", body, headers)

        try:
            mattermost()
            mattermost_statuses = dict(probe.statuses)
            probe.statuses.clear()
            slack()
            slack_statuses = dict(probe.statuses)
        finally:
            probe.close()
        assert listener.process.poll() is None, "the listener died"

    # The run reached both sides of every check: clicks were accepted and refused on each endpoint.
    for statuses in (mattermost_statuses, slack_statuses):
        assert statuses.get(200, 0) > 0, statuses
        assert sum(n for s, n in statuses.items() if 400 <= s < 500) > 0, statuses
    print(f"mattermost answers {mattermost_statuses}; slack answers {slack_statuses}")
