"""`alertq topology …`: the RabbitMQ side of alertq (broker/topology.py holds the plan)."""

from __future__ import annotations

from typing import Any

import click
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from alertq.common import load_settings, one_line
from schemas.settings import Settings


@click.group()
def topology() -> None:
    """RabbitMQ exchanges and queues alertq needs."""


@topology.command("declare")
def declare() -> None:
    """Declare every exchange, queue and binding (idempotent; every process also does it at start).

    \b
    The escalator's queue alertq.escalator only once routing_file configures escalation. Without
    one, an alertq.escalator left from before is unbound (it would collect a copy of every
    notification that nobody reads) and deleted if empty; one holding messages is kept and the
    output says what to do with them. One an escalator consumes is left alone.

    \b
    Example:
      ALERTQ_BROKER__URLS=amqp://alertq:secret@mq1/ alertq topology declare
    """
    from broker import topology as broker_topology
    from broker.connection import connect, describe_error

    settings = load_settings()
    notes: list[str] = []
    try:
        connection = connect(settings.broker, "alertq topology declare")
        try:
            plan = broker_topology.plan(settings)
            notes += broker_topology.apply(connection.channel(), plan)
            if not broker_topology.escalation_configured(settings):
                retired = broker_topology.retire_escalator_queue(connection, settings)
                notes += [retired] if retired else []
        finally:
            if connection.is_open:
                connection.close()
    except Exception as exc:
        raise click.ClickException(one_line(f"topology not declared: {describe_error(exc)}")) from None
    click.echo(
        f"declared {len(plan.exchanges)} exchanges, {len(plan.queues)} queues, "
        f"{len(plan.bindings)} bindings on {settings.broker.masked_urls[0]}"
    )
    for note in notes:
        click.echo(note)


@topology.command("export")
@click.option("--vhost", default="/", show_default=True, help="Virtual host the definitions are for.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="File to write (default: standard output).",
)
@click.option(
    "--defaults",
    is_flag=True,
    help="Use alertq's built-in defaults, ignoring the environment and any config file, with "
    "escalation (the escalator's queue and timer queues: what deploy/rabbitmq/definitions.json holds).",
)
def export(vhost: str, output: str, defaults: bool) -> None:
    """Write the topology as a RabbitMQ definitions file (exchanges, queues, bindings).

    \b
    Built from the same plan `alertq topology declare` applies, for the settings in force
    (enabled channels, retry.delays, broker.delivery_limit; the escalator's queue alertq.escalator
    and timer queues alertq.delay.<2^k>s once routing_file is set). RabbitMQ loads it at boot
    (definitions.local.path in rabbitmq.conf) or through the management API. No users or
    passwords are written.

    \b
    Examples:
      alertq topology export --vhost alertq -o /etc/rabbitmq/alertq-definitions.json
      alertq topology export --defaults -o deploy/rabbitmq/definitions.json
      alertq topology export | curl -u admin -H 'content-type: application/json' \\
          --data-binary @- http://mq1:15672/api/definitions/%2F
    """
    from broker import definitions
    from broker import topology as broker_topology

    if not vhost:
        raise click.BadParameter("must not be empty", param_hint="--vhost")
    settings = _built_in_defaults() if defaults else load_settings()
    # The reference file serves deployments that run the escalator (all of deploy/ does).
    topology = broker_topology.plan(settings, escalation=True if defaults else None)
    text = definitions.dumps(definitions.definitions(topology, vhost))
    try:
        with click.open_file(output, "w", encoding="utf-8", atomic=output != "-") as out:
            out.write(text)
    except OSError as exc:
        raise click.ClickException(one_line(f"cannot write {output}: {exc.strerror or exc}")) from None


def _built_in_defaults() -> Settings:
    """Settings from the defaults alone: neither the environment nor a config file is read."""

    class Defaults(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *_: Any, **__: Any
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    return Defaults()
