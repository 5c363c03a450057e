"""`alertq worker <channel>`: see workers/worker.py for the flow."""

from __future__ import annotations

import sys

import click

from alertq.common import load_settings


@click.command()
@click.argument("channel")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics and /healthz on this port (0: off). Default: worker.metrics_port.",
)
def worker(channel: str, metrics_port: int | None) -> None:
    """Deliver the notifications queued for CHANNEL (mattermost, slack, email, webhook).

    \b
    Consumes alertq.notify.CHANNEL; retries go through the broker's delay queues
    (retry.delays, retry.max_attempts, retry.max_age), what gives up goes to alertq.dead with
    a reason (see `alertq dlq`). Run as many per channel as the load needs; they share the
    queue. SIGTERM: stops taking work, finishes deliveries in progress, exits 0.

    \b
    Examples:
      ALERTQ_CHANNELS__WEBHOOK__URL=https://sms.example.org/in alertq worker webhook
      alertq worker mattermost --metrics-port 9410    # curl localhost:9410/metrics
      ALERTQ_RETRY__DELAYS=5,30,120 ALERTQ_WORKER__PREFETCH=100 alertq worker slack
    """
    settings = load_settings()
    reason = settings.channels.problem(channel)
    if reason is not None:
        raise click.ClickException(reason)
    from workers.channels.base import ConfigurationError
    from workers.worker import Worker

    try:
        runner = Worker(settings, channel, metrics_port=metrics_port)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(runner.run())
