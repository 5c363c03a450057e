"""`alertq ack-listener`: see ack_listener/app.py for the flow."""

from __future__ import annotations

import click

from alertq.common import load_settings


@click.command("ack-listener")
@click.option("--host", help="Listen address (default: ack_listener.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Listen port (default: ack_listener.port, 8090).")
def ack_listener(host: str | None, port: int | None) -> None:
    """Take Acknowledge clicks from Mattermost and Slack and queue them for `alertq ack-forwarder`.

    \b
    Every click must carry a button token signed with ack.signing_secret (the channels sign it);
    Slack clicks must also carry Slack's signature (ack_listener.slack_signing_secret, 5-minute
    window). A bad, tampered or expired token → 401, a user not in ack_listener.allowed_users →
    403, a body over ack_listener.body_limit → 413, a malformed click → 400: nothing is queued.
    A good click is published to exchange alertq.acks (alertq.ack/1) and answered only once the
    broker confirmed it: Mattermost's post is updated ("Acknowledged by @user via alertq", button
    removed); Slack gets 200 at once and the message is replaced through its response_url.

    \b
    Endpoints:
      POST /mattermost/actions     Mattermost interactive button (JSON; context.token)
      POST /slack/actions          Slack interactivity (form payload=…, signed)
      GET  /healthz, GET /openapi.json

    \b
    Examples:
      ALERTQ_ACK__SIGNING_SECRET=… alertq ack-listener          # http://127.0.0.1:8090
      alertq ack-listener --host 0.0.0.0 --port 9090
      ALERTQ_ACK_LISTENER__ALLOWED_USERS=jdoe,asmith ALERTQ_ACK_LISTENER__SLACK_SIGNING_SECRET=… alertq ack-listener
    """
    from ack_listener.server import run
    from alertq import listening

    settings = load_settings()
    overrides = {"host": host, "port": port}
    listener = settings.ack_listener.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    sock = listening.bind(listener.host, listener.port, "the ack listener")
    run(settings.model_copy(update={"ack_listener": listener}), sock)
