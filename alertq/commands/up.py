"""`alertq up`: the whole pipeline on this machine (alertq/stack.py lists the parts)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from alertq.common import load_settings


@click.command()
@click.option(
    "--demo-step-scale",
    type=click.FloatRange(min=0.001, max=1000),
    default=1.0,
    show_default=True,
    envvar="ALERTQ_UP_DEMO_STEP_SCALE",
    help="Multiply the delays of the demo escalation (deploy/local/demo-routing.toml) by this, "
    "e.g. 0.1 for steps after 3 s and 6 s. Env: ALERTQ_UP_DEMO_STEP_SCALE.",
)
@click.option(
    "--loop-defaults/--no-loop-defaults",
    default=True,
    show_default=True,
    envvar="ALERTQ_UP_LOOP_DEFAULTS",
    help="Fill in what the settings leave out to run the whole loop (below); off: only what is configured "
    "runs. Env: ALERTQ_UP_LOOP_DEFAULTS=false.",
)
def up(demo_step_scale: float, loop_defaults: bool) -> None:
    """Run every alertq process on this machine until Ctrl-C or SIGTERM.

    \b
    Starts each part as a child process (each declares the RabbitMQ topology it needs when it
    connects, and waits for a broker that is not there yet), restarts any that dies (with backoff)
    and stops them all cleanly on Ctrl-C/SIGTERM. Channels with no endpoint configured deliver to
    the preview sink. For production run the parts under systemd or Kubernetes so each can be
    scaled on its own.

    \b
    With nothing configured it runs the whole loop (alertq/loop_defaults.py): Mattermost and Slack
    post to the sink with Acknowledge buttons, signed with a secret made on the first start in
    ./var/ack-signing-secret; the ack listener takes the clicks; the forwarder writes the Nagios
    external command lines to ./var/nagios.cmd, which the preview page shows as what the monitoring
    core received; the escalator runs deploy/local/demo-routing.toml (steps 30 s and 60 s after a
    problem nobody acknowledged). Every setting given in the environment or the TOML file wins over
    these; no other command uses them.

    \b
    Example:
      make run                     # venv, install, then this
      ALERTQ_UP_DEMO_STEP_SCALE=0.1 alertq up      # demo escalation steps after 3 s and 6 s
    """
    from alertq import loop_defaults as defaults_for_up
    from alertq.stack import processes
    from alertq.supervisor import Supervisor

    settings = load_settings(configure_logging=False)
    defaults = defaults_for_up.LoopDefaults()
    if loop_defaults:
        try:
            defaults = defaults_for_up.loop_defaults(settings, Path("var"), demo_step_scale)
        except (defaults_for_up.LoopDefaultsError, OSError) as exc:
            raise click.ClickException(" ".join(str(exc).split())) from None
        defaults_for_up.apply(defaults)
    settings = load_settings()  # the same settings, with the defaults filled in
    parts = processes(settings)
    for note in defaults.notes:
        click.echo(f"alertq up: {note}", err=True)
    width = max(len(part.name) for part in parts)
    for part in parts:
        click.echo(f"  {part.name:<{width}}  {part.about}", err=True)
    sys.exit(Supervisor(parts).run())
