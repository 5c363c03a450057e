"""`alertq relay`: see producer/relay.py for the flow."""

from __future__ import annotations

import sys

import click

from alertq.common import load_settings


@click.command()
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

    sys.exit(Relay(load_settings(), once=once).run())
