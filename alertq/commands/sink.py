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
    It also answers the part of the Mattermost REST API v4 and the Slack Web API that alertq uses,
    with the paths, bodies, answers, errors, size limits and rate limits of the real services
    (docs/channels.md, "the sink's chat API emulation"). Any non-empty token is accepted unless
    sink.mattermost.tokens / sink.slack.tokens are set; every channel exists and has the bot in it
    unless sink.*.channels and sink.mattermost.not_member / sink.slack.not_in_channel say otherwise.
    The page shows API posts as the chat does: each root with its current (edited) content and its
    thread replies under it, in order, per channel.

    \b
    Endpoints:
      GET  /                                  the page (refreshes itself; ?channel=<key> for one channel)
      POST /hooks/mattermost/<name>           Mattermost incoming webhook, answers 200 ok
      POST /hooks/slack/<name>                Slack incoming webhook, answers 200 ok
      POST /hooks/webhook/<name>              any JSON (the webhook channel)
      GET  /api/messages[?channel=…]          what was received, with a rendered summary
      GET  /api/messages/<id>, DELETE /api/messages[/<id>] (deleting one is deleting it in the chat)
      POST /api/messages/<id>/actions/<key>   click a button ({"user_name": …} optional)
      GET  /api/calls[?api=mattermost|slack&after=<seq>]   every chat API call and its answer, in order
      GET  /api/core/commands                 lines of sink.core_command_file (what the core received)
      DELETE /api/calls                       forget the recorded calls
      GET  /healthz

    \b
    Mattermost API v4 (Authorization: Bearer <token>):
      POST /api/v4/posts                      channel_id, message, root_id, props (attachments)
      PUT  /api/v4/posts/<id>/patch           message, props, is_pinned, file_ids
      GET  /api/v4/posts/<id>
      GET  /api/v4/teams/name/<team>/channels/name/<channel>
      GET  /api/v4/users/username/<name>, GET /api/v4/users/me
      POST /api/v4/channels/direct            ["<bot id>", "<user id>"]

    \b
    Slack Web API (base_url <sink>/api/; JSON or form; Authorization: Bearer xoxb-…):
      POST /api/chat.postMessage              channel, text, blocks, attachments, thread_ts
      POST /api/chat.update                   channel, ts, text, blocks, attachments
      POST /api/auth.test, /api/conversations.info

    \b
    Examples:
      alertq sink                              # http://127.0.0.1:8025/, SMTP on 127.0.0.1:2525
      alertq sink --http-port 9000 --smtp-port 2526
      ALERTQ_SINK__SLACK__NOT_IN_CHANNEL=C0QUIET alertq sink
    """
    from alertq.sink.server import run

    settings = load_settings().sink
    overrides = {"host": host, "http_port": http_port, "smtp_port": smtp_port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    run(settings)
