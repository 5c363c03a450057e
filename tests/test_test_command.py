"""`alertq test <channel>`: a test notification through the real broker and a real worker process to a real
HTTP endpoint, and the command's report of where it landed."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from werkzeug import Request, Response

from broker import names
from tests.conftest import run
from tests.support import amqp
from tests.support.workers import Endpoint, WorkerProcess

SECRET_PATH = "s3cr3t-path"


@pytest.fixture
def mattermost_env(alertq_env: dict[str, str], hook: Endpoint) -> dict[str, str]:
    return {
        **alertq_env,
        "ALERTQ_CHANNELS__MATTERMOST__URL": hook.url,
        "ALERTQ_RETRY__DELAYS": "1,2",
        "ALERTQ_WORKER__CONNECT_RETRY_WAIT": "0.1",
    }


def test_delivered_reports_target_attempt_and_time(
    mattermost_env: dict[str, str], hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker(mattermost_env, channel="mattermost")
    result = run(["alertq", "test", "mattermost", "--timeout", "60"], mattermost_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "delivered to mattermost:" in result.stdout
    assert "on attempt 1" in result.stdout
    assert hook.wait_for(1) == 1
    post = json.loads(hook.hits[0].body)
    text = post["attachments"][0]["text"]
    assert text.startswith(":loudspeaker: **CUSTOM**: alertq-test / alertq-test is **OK**")
    assert "test notification sent by" in text
    assert SECRET_PATH not in result.stdout + result.stderr


def test_a_permanent_refusal_is_reported_dead_lettered_with_its_reason_and_no_secret(
    mattermost_env: dict[str, str],
    amqp_url: str,
    hook: Endpoint,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # The endpoint quotes its own URL back, key included: neither the receipt nor the output may show it.
    hook.behaviour = lambda request, _n: Response(f"no such hook {request.url}", 404)
    start_worker(mattermost_env, channel="mattermost")
    result = run(["alertq", "test", "mattermost", "--timeout", "60"], mattermost_env)

    assert result.returncode == 1
    assert "dead-lettered (permanent) on attempt 1: HTTP 404: no such hook" in result.stdout
    assert SECRET_PATH not in result.stdout + result.stderr
    (dead,) = amqp.take(amqp_url, names.DEAD_QUEUE, count=1)
    assert dead.json["host"]["name"] == "alertq-test"


def test_a_retry_is_reported_then_the_delivery(
    mattermost_env: dict[str, str], hook: Endpoint, start_worker: Callable[..., WorkerProcess]
) -> None:
    def first_fails(_request: Request, n: int) -> Response:
        return Response("busy", 503) if n == 0 else Response("ok", 200)

    hook.behaviour = first_fails
    start_worker(mattermost_env, channel="mattermost")
    result = run(["alertq", "test", "mattermost", "--timeout", "60"], mattermost_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "attempt 1 failed: HTTP 503: busy; next attempt in 1 s" in result.stderr
    assert "on attempt 2" in result.stdout


def test_no_worker_says_so(mattermost_env: dict[str, str], amqp_url: str, hook: Endpoint) -> None:
    result = run(["alertq", "test", "mattermost", "--timeout", "2"], mattermost_env)

    assert result.returncode == 1
    assert (
        "queued in alertq.notify.mattermost but no worker consumed it: is `alertq worker mattermost` running?"
        in result.stdout
    )
    assert amqp.depth(amqp_url, names.notify_queue("mattermost")) == 1
    assert hook.hits == []


def test_bad_input_is_one_line(alertq_env: dict[str, str]) -> None:
    result = run(["alertq", "test", "pager"], alertq_env)
    assert result.returncode != 0
    assert result.stderr.strip() == "Error: unknown channel 'pager'; channels: mattermost, slack, email, webhook"
    helped = run(["alertq", "test", "--help"], alertq_env)
    assert "alertq test mattermost" in helped.stdout and "Examples" in helped.stdout
