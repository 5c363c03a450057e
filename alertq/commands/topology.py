"""`alertq topology …`: the RabbitMQ side of alertq (broker/topology.py holds the plan)."""

from __future__ import annotations

import click

from alertq.common import load_settings, one_line


@click.group()
def topology() -> None:
    """RabbitMQ exchanges and queues alertq needs."""


@topology.command("declare")
def declare() -> None:
    """Declare every exchange, queue and binding (idempotent; every process also does it at start).

    \b
    Example:
      ALERTQ_BROKER__URLS=amqp://alertq:secret@mq1/ alertq topology declare
    """
    from broker import topology as broker_topology
    from broker.connection import connect, describe_error

    settings = load_settings()
    try:
        connection = connect(settings.broker, "alertq topology declare")
        try:
            plan = broker_topology.declare(connection.channel(), settings)
        finally:
            if connection.is_open:
                connection.close()
    except Exception as exc:
        raise click.ClickException(one_line(f"topology not declared: {describe_error(exc)}")) from None
    click.echo(
        f"declared {len(plan.exchanges)} exchanges, {len(plan.queues)} queues, "
        f"{len(plan.bindings)} bindings on {settings.broker.masked_urls[0]}"
    )
