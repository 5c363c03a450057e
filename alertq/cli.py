"""`alertq`: the operator's command. Each sub-command's flow starts in the module it names."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from pydantic import SecretStr, ValidationError

from schemas.settings import Settings, config_file


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise click.ClickException(_one_line(f"invalid settings: {problems}")) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(_one_line(f"cannot load settings: {exc}")) from None


def _configure_logging(settings: Settings) -> None:
    from broker import logs

    logs.configure(settings.log)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="ALERTQ_CONFIG",
    help="alertq TOML file (default: $ALERTQ_CONFIG, ./alertq.toml, /etc/alertq/alertq.toml).",
)
@click.version_option(package_name="alertq")
def main(config_path: str | None) -> None:
    """alertq delivers monitoring notifications through RabbitMQ to chat and mail.

    \b
    Settings come from the environment (ALERTQ_…, nested with __, e.g.
    ALERTQ_BROKER__URLS=amqp://u:p@mq1/,amqp://u:p@mq2/) over the TOML file over built-in
    defaults that run everything on this machine. `alertq config check` shows what is in force.
    """
    if config_path:
        os.environ["ALERTQ_CONFIG"] = config_path


@main.command()
@click.option("--once", is_flag=True, help="Publish the backlog, then exit (exit 1 if the broker is unreachable).")
def relay(once: bool) -> None:
    """Publish spooled events to RabbitMQ, oldest first, deleting each file once confirmed.

    \b
    Run one per monitoring host, next to the core (systemd: alertq-relay.service). It holds
    <spool>/relay.lock; alertq-enqueue sees that and leaves publishing to it. A second relay on
    the same spool waits as a standby. SIGTERM: finishes outstanding confirms and exits 0.

    \b
    Examples:
      alertq relay                 # run until stopped
      alertq relay --once          # drain the spool after a broker outage, then exit
    """
    from producer.relay import Relay

    settings = load_settings_or_exit()
    _configure_logging(settings)
    sys.exit(Relay(settings, once=once).run())


@main.group()
def topology() -> None:
    """RabbitMQ exchanges and queues alertq needs."""


@topology.command("declare")
def topology_declare() -> None:
    """Declare every exchange, queue and binding (idempotent; every process also does it at start).

    \b
    Example:
      ALERTQ_BROKER__URLS=amqp://alertq:secret@mq1/ alertq topology declare
    """
    from broker import topology as broker_topology
    from broker.connection import connect, describe_error

    settings = load_settings_or_exit()
    try:
        connection = connect(settings.broker, "alertq topology declare")
        try:
            plan = broker_topology.declare(connection.channel(), settings)
        finally:
            if connection.is_open:
                connection.close()
    except Exception as exc:
        raise click.ClickException(_one_line(f"topology not declared: {describe_error(exc)}")) from None
    click.echo(
        f"declared {len(plan.exchanges)} exchanges, {len(plan.queues)} queues, "
        f"{len(plan.bindings)} bindings on {settings.broker.masked_urls[0]}"
    )


@main.group()
def config() -> None:
    """Inspect the settings in force."""


@config.command("check")
def config_check() -> None:
    """Validate the settings and print them as JSON, secrets masked.

    \b
    Exit status 0 when valid, 1 with a one-line reason when not. Example:
      ALERTQ_CONFIG=/etc/alertq/alertq.toml alertq config check
    """
    settings = load_settings_or_exit()
    click.echo(json.dumps(effective_settings(settings), indent=2, sort_keys=False))
    click.echo(f"settings are valid (config file: {config_file() or 'none, defaults and environment'})", err=True)


def effective_settings(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = _mask(settings.model_dump(mode="python"))
    data["broker"]["urls"] = settings.broker.masked_urls
    return data


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


if __name__ == "__main__":
    main()
