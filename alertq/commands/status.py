"""`alertq status`: see alertq/health/ for what is gathered and judged."""

from __future__ import annotations

import json
import sys

import click

from alertq.common import load_settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
@click.option("--nagios", is_flag=True, help="Nagios plugin output: one line with perfdata, exit 0/1/2/3.")
@click.option(
    "--spool-max-age",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds the oldest spooled event may wait before that is critical.",
)
@click.option("--no-reasons", is_flag=True, help="Skip reading dead letters for the by-reason breakdown.")
def status(as_json: bool, nagios: bool, spool_max_age: float, no_reasons: bool) -> None:
    """Queue depths and consumers per channel, dead letters by reason, spool backlog, open incidents.

    \b
    Exit status (also for Nagios):
      0 OK        all quiet
      1 WARNING   dead letters are waiting (alertq dlq list), or another alertq queue holds
                  messages and nobody consumes them (e.g. alertq.escalator with escalation
                  off, alertq.acks with no forwarder); the line names queue and count
      2 CRITICAL  broker unreachable, a channel queue missing, a channel queue with messages
                  and no consumer, or the spool's oldest event older than --spool-max-age
      3 UNKNOWN   status itself failed (e.g. bad settings)

    \b
    Examples:
      alertq status
      alertq status --json | jq '.dead_letters.by_reason'
      alertq status --nagios --spool-max-age 120     # as a Nagios/Naemon check command
    """
    from alertq.health import facts as health_facts
    from alertq.health import render
    from alertq.health.verdict import judge

    try:
        settings = load_settings()
    except click.ClickException as exc:
        if nagios:
            click.echo(f"ALERTQ UNKNOWN - {exc.format_message()}")
        else:
            click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(3)
    facts = health_facts.gather(settings, reasons=not no_reasons)
    # The escalator's sweep sends a step whose timer was lost after sweep_after: twice that and the
    # step is not going out by itself.
    verdict = judge(facts, spool_max_age, overdue_after=max(60.0, 2 * settings.escalator.sweep_after))
    if nagios:
        click.echo(render.as_nagios(facts, verdict))
    elif as_json:
        click.echo(json.dumps(render.as_dict(facts, verdict), indent=2))
    else:
        click.echo(render.as_table(facts, verdict))
    sys.exit(int(verdict.level))
