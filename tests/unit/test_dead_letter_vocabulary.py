"""The one dead-letter vocabulary (broker/dead_letters.py): reasons, headers, and the help that lists them."""

from __future__ import annotations

from datetime import UTC, datetime

import pika

from alertq.commands.dlq import FILTER_HELP
from broker import dead_letters, names

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def test_every_reason_is_explained_and_named_in_the_dlq_help() -> None:
    constants = {v for k, v in vars(dead_letters).items() if k.isupper() and isinstance(v, str)}
    assert constants == set(dead_letters.REASONS)
    for reason in dead_letters.REASONS:
        assert f"  {reason} " in FILTER_HELP


def test_the_headers_say_why_when_and_the_clipped_error() -> None:
    headers = dead_letters.headers(dead_letters.PERMANENT, "HTTP 400: " + "x" * 1000, NOW)
    assert headers[names.HEADER_DEAD_REASON] == "permanent"
    assert headers[names.HEADER_DEAD_AT] == "2026-11-27T09:30:00+00:00"
    assert len(headers[names.HEADER_LAST_ERROR]) == dead_letters.ERROR_MAX


def test_the_properties_keep_the_original_and_add_bookkeeping_and_the_reason() -> None:
    original = pika.BasicProperties(
        message_id="evt-1", content_type="application/json", headers={"custom": "kept", names.HEADER_ATTEMPT: 1}
    )
    dead = dead_letters.properties(original, dead_letters.MAX_ATTEMPTS, "timed out", NOW, {names.HEADER_ATTEMPT: 5})
    assert (dead.message_id, dead.content_type) == ("evt-1", "application/json")
    assert dead.headers == {
        "custom": "kept",
        names.HEADER_ATTEMPT: 5,
        names.HEADER_DEAD_REASON: "max-attempts",
        names.HEADER_DEAD_AT: NOW.isoformat(),
        names.HEADER_LAST_ERROR: "timed out",
    }
    assert original.headers == {"custom": "kept", names.HEADER_ATTEMPT: 1}, "the original is not changed"
