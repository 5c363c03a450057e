"""`alertq test <channel>`: send a test notification through the whole pipeline and say where it landed.

The event goes straight to `alertq.events` (routing key `notify.<channel>`, mandatory, confirmed), not
through the spool: an operator testing a channel wants a broker problem reported now, not a file that
waits for the relay, and a spool file cannot carry the header that asks for a receipt. It is a CUSTOM
notification about host/service `alertq-test`, saying who sent it. Header `alertq-report-to` names an
exclusive, auto-delete queue of this command's; the worker sends its receipt there once the outcome is
settled (workers/receipts.py). No receipt within `--timeout`: the channel queue's consumer count tells
"no worker running" from "a worker is busy".
"""

from __future__ import annotations

import getpass
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from alertq.common import load_settings, one_line

if TYPE_CHECKING:
    from pika.adapters.blocking_connection import BlockingChannel

    from schemas.alert import AlertEvent

TEST_NAME = "alertq-test"


@click.command("test")
@click.argument("channel")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds to wait for the worker's receipt.",
)
@click.option("--contact-email", help="For email: the address to send the test to (else channels.email.recipients).")
def test(channel: str, timeout: float, contact_email: str | None) -> None:
    """Send a test notification to CHANNEL and report where it landed.

    \b
    The notification (type CUSTOM, host and service "alertq-test") goes to the broker like
    any other and is delivered by `alertq worker CHANNEL`, which reports back:
      delivered        target, attempt, how long it took          exit 0
      retrying         the endpoint's error, when the next try is  exit 1
      dead-lettered    why (see `alertq dlq list`)                 exit 1
      no receipt       e.g. no worker running for CHANNEL          exit 1

    \b
    Examples:
      alertq test mattermost
      alertq test email --contact-email oncall@example.org
      alertq test webhook --timeout 60      # wait out a slow endpoint's retries
    """
    from schemas.settings import ChannelsSettings

    known = list(ChannelsSettings.model_fields)  # a new channel's settings entry makes it testable
    if channel not in known:
        raise click.ClickException(f"unknown channel {channel!r}; channels: {', '.join(known)}")
    settings = load_settings(configure_logging=False)
    if not settings.channels.get(channel).enabled:
        click.echo(f"warning: channel {channel!r} is disabled in these settings", err=True)

    from broker import names, topology
    from broker.connection import connect, describe_error
    from broker.publisher import ConfirmedPublisher, PublishError, json_properties
    from workers.receipts import Receipt

    event = _test_event(channel, contact_email)
    event_id = event.event_id
    reply_queue = f"{names.RECEIPT_QUEUE_PREFIX}{uuid.uuid4().hex}"
    try:
        connection = connect(settings.broker, f"alertq test {channel}")
    except Exception as exc:
        raise click.ClickException(one_line(f"cannot reach the broker: {describe_error(exc)}")) from None
    try:
        channel_ = connection.channel()
        topology.declare(channel_, settings)
        channel_.queue_declare(reply_queue, exclusive=True, auto_delete=True)
        headers = {names.HEADER_REPORT_TO: reply_queue}
        sent_at = time.monotonic()
        try:
            ConfirmedPublisher(connection.channel()).publish(
                names.EVENTS_EXCHANGE, names.notify_key(channel), event.to_json(), json_properties(event_id, headers)
            )
        except PublishError as exc:
            raise click.ClickException(f"the broker did not take the test notification: {exc}") from None
        click.echo(f"sent test notification {event_id} to {names.notify_queue(channel)}")

        last: Receipt | None = None
        deadline = sent_at + timeout
        while time.monotonic() < deadline:
            method, _props, body = channel_.basic_get(reply_queue, auto_ack=True)
            if method is None:
                connection.sleep(0.05)
                continue
            receipt = Receipt.decode(body)
            if receipt.event_id != event_id:
                continue
            last = receipt
            latency = time.monotonic() - sent_at
            if receipt.outcome == "delivered":
                click.echo(
                    f"delivered to {receipt.target} on attempt {receipt.attempt} "
                    f"(endpoint took {receipt.seconds or 0:.3f} s; {latency:.3f} s after sending)"
                )
                sys.exit(0)
            if receipt.outcome == "dead":
                click.echo(
                    f"dead-lettered ({receipt.dead_reason}) on attempt {receipt.attempt}: {receipt.error}\n"
                    f"see: alertq dlq list --channel {channel}"
                )
                sys.exit(1)
            click.echo(
                f"attempt {receipt.attempt} failed: {receipt.error}; next attempt in {receipt.retry_in} s",
                err=True,
            )

        ready, consumers = _queue_state(channel_, names.notify_queue(channel))
    except click.ClickException:
        raise
    except Exception as exc:
        raise click.ClickException(one_line(f"test interrupted: {describe_error(exc)}")) from None
    finally:
        if connection.is_open:
            connection.close()

    queue = names.notify_queue(channel)
    if last is not None:
        click.echo(
            f"still retrying after {timeout:g} s: attempt {last.attempt} failed: {last.error}; "
            f"next attempt {last.retry_in} s after it (watch `alertq dlq list` if it gives up)"
        )
    elif consumers == 0:
        click.echo(
            f"no receipt within {timeout:g} s: queued in {queue} but no worker consumed it: "
            f"is `alertq worker {channel}` running? (the test notification waits there for one)"
        )
    else:
        click.echo(
            f"no receipt within {timeout:g} s: {consumers} worker(s) consume {queue}, {ready} message(s) "
            f"still waiting; the worker may be busy or rate-limited: try a longer --timeout"
        )
    sys.exit(1)


def _test_event(channel: str, contact_email: str | None) -> AlertEvent:
    from schemas.alert import ALERT_SCHEMA, AlertEvent

    sender = f"{_user()}@{socket.gethostname()}"
    now = datetime.now(UTC)
    test_thing = {"id": TEST_NAME, "name": TEST_NAME, "display_name": TEST_NAME}
    return AlertEvent.model_validate(
        {
            "schema": ALERT_SCHEMA,
            "event_id": str(uuid.uuid4()),
            "created_at": now,
            "channel": channel,
            "kind": "service",
            "notification_type": "CUSTOM",
            "host": test_thing,
            "service": test_thing,
            "state": 0,
            "output": f"alertq test notification sent by {sender} at {now:%Y-%m-%d %H:%M:%S} UTC: "
            f"if you can read this, the {channel} channel works. Nothing to do.",
            "contact": {"name": _user(), "email": contact_email} if contact_email else None,
            "source": {"producer_host": socket.gethostname(), "core": "alertq test"},
        }
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _queue_state(channel: BlockingChannel, queue: str) -> tuple[int, int]:
    ok = channel.queue_declare(queue, passive=True).method
    return int(ok.message_count), int(ok.consumer_count)
