"""`alertq sink`: see alertq/sink/ for the flow."""

from __future__ import annotations

import click

from alertq.common import load_settings


@click.command()
@click.option("--host", help="Listen address (default: sink.host, 127.0.0.1).")
@click.option(
    "--http-port", type=click.IntRange(1, 65535), help="Page, API and webhooks (default: sink.http_port, 8025)."
)
@click.option("--smtp-port", type=click.IntRange(1, 65535), help="SMTP (default: sink.smtp_port, 2525).")
def sink(host: str | None, http_port: int | None, smtp_port: int | None) -> None:
    """Local preview: keep what the workers send to chat, webhooks and mail, and show it on a web page.

    \b
    A stand-in for Mattermost, Slack, a webhook receiver and an SMTP server on this machine, so
    notifications can be seen arriving with no chat at all. `alertq up` starts it and points every
    enabled channel that has no real endpoint at it. Buttons on the page post to the ack listener
    exactly as Mattermost or Slack would. Messages live in memory only (the newest sink.max_messages).

    \b
    Endpoints:
      GET  /                                  the page (refreshes itself)
      POST /hooks/mattermost/<name>           Mattermost incoming webhook, answers 200 ok
      POST /hooks/slack/<name>                Slack incoming webhook, answers 200 ok
      POST /hooks/webhook/<name>              any JSON (the webhook channel)
      GET  /api/messages[?channel=…]          what was received, with a rendered summary
      GET  /api/messages/<id>, DELETE /api/messages
      POST /api/messages/<id>/actions/<key>   click a button ({"user_name": …} optional)
      GET  /healthz

    \b
    Examples:
      alertq sink                              # http://127.0.0.1:8025/, SMTP on 127.0.0.1:2525
      alertq sink --http-port 9000 --smtp-port 2526
    """
    from alertq.sink.server import run

    settings = load_settings().sink
    overrides = {"host": host, "http_port": http_port, "smtp_port": smtp_port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    run(settings)
