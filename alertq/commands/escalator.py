"""`alertq escalator`: see escalator/escalator.py for the flow."""

from __future__ import annotations

import sys

import click

from alertq.common import load_settings


@click.command()
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics and /healthz on this port (0: off). Default: escalator.metrics_port.",
)
def escalator(metrics_port: int | None) -> None:
    """Escalate problems nobody acknowledges, step by step, per the routing file's policies.

    \b
    A PROBLEM opens an incident under the first policy whose host/service globs match (or the
    one named by `alertq-enqueue --escalation-policy`) and schedules step 1 `after` later
    through the broker's delay queues. Each step notifies its contacts and groups on its
    channels (honouring each contact's notification options and period) and schedules the
    next; after the last, it repeats `repeat` times. ACKNOWLEDGEMENT, RECOVERY, DOWNTIMESTART
    or an Acknowledge click in chat ends the incident. With escalator.check_target the core is
    asked before each step (an unreachable core does not stop the step).

    \b
    Needs routing_file (see docs/routing.example.toml; `alertq config check` validates it).
    Incidents live in state_store: sqlite:///var/alertq.db (one host), postgresql://… (shared).
    Run two: the second waits as a standby and takes over when the first one stops.
    `alertq status` shows the open incidents and their next step.

    \b
    Examples:
      ALERTQ_ROUTING_FILE=/etc/alertq/routing.toml alertq escalator
      ALERTQ_STATE_STORE=postgresql://alertq@db/alertq alertq escalator --metrics-port 9420
    """
    settings = load_settings()
    from escalator.setup import EscalatorSetupError, decisions_from

    try:
        decisions = decisions_from(settings)
    except EscalatorSetupError as exc:
        raise click.ClickException(str(exc)) from None
    from escalator.escalator import Escalator

    sys.exit(Escalator(settings, decisions, metrics_port=metrics_port).run())
