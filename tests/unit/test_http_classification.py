"""How an HTTP answer becomes an outcome (`delivery.http.classify`): one rule for every endpoint."""

from __future__ import annotations

import email.utils
import time

import pytest

from delivery.http import Answer, classify, mask, retry_after
from delivery.http_wire import ResponseHeaders
from delivery.outcomes import Permanent, Retryable

HOOK = "https://chat.example.org/hooks/k3y-s3cr3t"


def answer(status: int, text: str = "", **headers: str) -> Answer:
    return Answer(status, text, ResponseHeaders({k.lower().replace("_", "-"): v for k, v in headers.items()}))


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    classify(answer(status, "ok"))


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_timeouts_throttling_and_server_trouble_are_retryable(status: int) -> None:
    with pytest.raises(Retryable, match=f"HTTP {status}: busy"):
        classify(answer(status, "busy"))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422, 501, 505, 302])
def test_everything_else_is_permanent(status: int) -> None:
    with pytest.raises(Permanent, match=f"HTTP {status}"):
        classify(answer(status, "no"))


def test_a_channels_permanent_error_body_is_permanent_whatever_the_status() -> None:
    with pytest.raises(Permanent, match="channel_is_archived"):
        classify(answer(500, "channel_is_archived"), frozenset({"channel_is_archived"}))
    with pytest.raises(Retryable):
        classify(answer(500, "rollup_error"), frozenset({"channel_is_archived"}))


def test_retry_after_in_seconds_comes_with_the_retryable() -> None:
    with pytest.raises(Retryable) as caught:
        classify(answer(429, "slow down", retry_after="30"))
    assert caught.value.after == 30.0


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    wait = retry_after(answer(503, retry_after=later))
    assert wait is not None and 100 < wait <= 120
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after(answer(503, retry_after=past)) == 0.0


@pytest.mark.parametrize("value", ["", "soon", "-5", "1.5e3"])
def test_an_unreadable_retry_after_is_no_wish(value: str) -> None:
    assert retry_after(answer(503, retry_after=value)) is None


def test_the_reason_is_one_line_and_an_excerpt() -> None:
    with pytest.raises(Permanent) as caught:
        classify(answer(400, "line one\nline two " + "x" * 500))
    assert "\n" not in caught.value.reason
    assert caught.value.reason.startswith("HTTP 400: line one line two x")
    assert len(caught.value.reason) < 220


def test_an_empty_body_gives_the_status_alone() -> None:
    with pytest.raises(Permanent) as caught:
        classify(answer(404))
    assert caught.value.reason == "HTTP 404"


def test_the_url_and_its_path_are_masked_when_a_server_quotes_them_back() -> None:
    with pytest.raises(Retryable) as caught:
        classify(answer(502, f"could not reach {HOOK} (/hooks/k3y-s3cr3t)"), url=HOOK)
    assert "k3y-s3cr3t" not in caught.value.reason
    assert caught.value.reason == "HTTP 502: could not reach *** (***)"


def test_masking_leaves_a_bare_root_path_alone() -> None:
    assert mask("see / for help", "https://chat.example.org/") == "see / for help"
    assert mask("anything", "") == "anything"
