"""`alertq up`: the whole pipeline on this machine (alertq/stack.py lists the parts)."""

from __future__ import annotations

import sys

import click

from alertq.common import load_settings


@click.command()
def up() -> None:
    """Run every alertq process on this machine until Ctrl-C or SIGTERM.

    \b
    Declares the topology, then starts each part as a child process, restarts any that dies
    (with backoff) and stops them all cleanly on Ctrl-C/SIGTERM. For production run the parts
    under systemd or Kubernetes (deploy/) so each can be scaled on its own.

    \b
    Example:
      make run                     # venv, install, topology, then this
    """
    from alertq.stack import processes
    from alertq.supervisor import Supervisor

    settings = load_settings()
    sys.exit(Supervisor(processes(settings)).run())
