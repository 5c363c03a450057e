"""`alertq up`: the whole pipeline on this machine (alertq/stack.py lists the parts)."""

from __future__ import annotations

import sys

import click

from alertq.common import load_settings


@click.command()
def up() -> None:
    """Run every alertq process on this machine until Ctrl-C or SIGTERM.

    \b
    Starts each part as a child process (each declares the RabbitMQ topology it needs when it
    connects, and waits for a broker that is not there yet), restarts any that dies (with backoff)
    and stops them all cleanly on Ctrl-C/SIGTERM. Channels with no endpoint configured deliver to
    the preview sink. For production run the parts under systemd or Kubernetes so each can be
    scaled on its own.

    \b
    Example:
      make run                     # venv, install, topology, then this
    """
    from alertq.stack import processes
    from alertq.supervisor import Supervisor

    settings = load_settings()
    sys.exit(Supervisor(processes(settings)).run())
