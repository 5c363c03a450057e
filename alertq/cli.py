"""`alertq`: the operator's command. Each sub-command lives in `alertq/commands/<name>.py` and its
process's flow starts in the package that module names (producer/, workers/, escalator/, ack_listener/,
broker/)."""

from __future__ import annotations

import os

import click

from alertq.commands.ack_forwarder import ack_forwarder
from alertq.commands.ack_listener import ack_listener
from alertq.commands.config import config
from alertq.commands.dlq import dlq
from alertq.commands.escalator import escalator
from alertq.commands.relay import relay
from alertq.commands.sink import sink
from alertq.commands.status import status
from alertq.commands.test import test
from alertq.commands.topology import topology
from alertq.commands.up import up
from alertq.commands.worker import worker


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
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


for command in (relay, worker, escalator, up, sink, ack_listener, ack_forwarder, status, dlq, test, topology, config):
    main.add_command(command)


if __name__ == "__main__":
    main()
