"""Clients of the chat APIs a conversation (one thread per incident) is built on: Mattermost REST v4 and
the Slack Web API. Both map every answer to the runtime's outcomes (`Retryable`, `Permanent`) plus the
catchable `PostNotFound` / `PostNotEditable` / `ChannelNotFound`, cut texts to the APIs' limits before
sending, and pace themselves with a `RateBudget` instead of provoking 429s."""

from delivery.chat.budget import RateBudget, ServerBudget
from delivery.chat.mattermost_api import MattermostApi, MattermostPost, parse_destination
from delivery.chat.outcomes import ChannelNotFound, Deferred, NotFound, PostNotEditable, PostNotFound
from delivery.chat.slack_api import SLACK_API_URL, SlackApi, SlackMessage

__all__ = [
    "SLACK_API_URL",
    "ChannelNotFound",
    "Deferred",
    "MattermostApi",
    "MattermostPost",
    "NotFound",
    "PostNotEditable",
    "PostNotFound",
    "RateBudget",
    "ServerBudget",
    "SlackApi",
    "SlackMessage",
    "parse_destination",
]
