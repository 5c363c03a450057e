"""`alertq ack-forwarder`: see ack_listener/forwarder.py for the flow."""

from __future__ import annotations

import sys

import click

from alertq.common import load_settings


@click.command("ack-forwarder")
def ack_forwarder() -> None:
    """Send the acknowledgements queued by `alertq ack-listener` to the monitoring core.

    \b
    Consumes queue alertq.acks and hands each ack to ack_target.kind:
      nagios         ACKNOWLEDGE_{HOST,SVC}_PROBLEM[_EXPIRE] lines into ack_target.command_file
      openitcockpit  POST <url>/nagios_module/cmd/submit_bulk_naemon.json (X-OITC-API key)
      icinga2        POST <url>/v1/actions/acknowledge-problem (basic auth, CA bundle)
    Retries for ack_target.give_up_after seconds (default 600) with growing waits (capped at
    ack_target.max_retry_wait); then the ack goes to alertq.dead with
    alertq-dead-reason and the chat is told it failed (Slack: response_url; Mattermost: the
    mattermost channel's webhook). The input is acked only after the outcome is confirmed.

    \b
    Examples:
      ALERTQ_ACK_TARGET__COMMAND_FILE=/var/lib/nagios4/rw/nagios.cmd alertq ack-forwarder
      ALERTQ_ACK_TARGET__KIND=openitcockpit ALERTQ_ACK_TARGET__URL=https://oitc.example.org \\
        ALERTQ_ACK_TARGET__API_KEY=… alertq ack-forwarder
      ALERTQ_ACK_TARGET__KIND=icinga2 ALERTQ_ACK_TARGET__URL=https://icinga:5665 \\
        ALERTQ_ACK_TARGET__USERNAME=alertq ALERTQ_ACK_TARGET__PASSWORD=… \\
        ALERTQ_ACK_TARGET__CA_BUNDLE=/etc/icinga2/pki/ca.crt alertq ack-forwarder
    """
    settings = load_settings()
    reason = settings.ack_target.problem()
    if reason is not None:
        raise click.ClickException(reason)
    from ack_listener.forwarder import Forwarder

    sys.exit(Forwarder(settings).run())
