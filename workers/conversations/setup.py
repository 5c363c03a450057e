"""What a chat notifier needs of this package, made from its settings: the conversations (API mode) or the
webhook dedupe (webhook mode). Imported when a notifier is made, so the channel modules do not load
the store's database drivers unless they use them."""

from __future__ import annotations

from schemas.channels import MattermostSettings, SlackSettings
from workers.channels.base import ConfigurationError
from workers.conversations.chats import ConversationChat, MattermostChat, SlackChat
from workers.conversations.flow import Conversations
from workers.conversations.folding import WebhookFolds
from workers.conversations.store import ConversationStore
from workers.conversations.storms import Storms
from workers.conversations.webhook_storms import WebhookStorms
from workers.folds import StormRule


def conversations_for(settings: MattermostSettings | SlackSettings) -> Conversations | None:
    """API mode (a bot token is set): one conversation per incident and destination."""
    if not settings.api_mode:
        return None
    chat: ConversationChat = (
        MattermostChat(settings) if isinstance(settings, MattermostSettings) else SlackChat(settings)
    )
    try:
        store = ConversationStore(settings.conversations.store)
    except Exception as exc:  # API mode cannot thread anything without it: refuse to start, one line
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigurationError(f"conversations.store cannot be opened ({type(exc).__name__}: {first})") from None
    return Conversations(chat, settings.conversations, window=settings.dedupe_window, store=store)


def folds_for(settings: MattermostSettings | SlackSettings) -> WebhookFolds | None:
    """Webhook mode with a dedupe window: one post per notification and destination."""
    if settings.api_mode or settings.dedupe_window <= 0:
        return None
    return WebhookFolds(settings.conversations, settings.dedupe_window)


def storms_for(settings: MattermostSettings | SlackSettings, conversations: Conversations | None) -> Storms | None:
    """API mode with `fold.enabled`: a storm to one destination goes out as digests."""
    if conversations is None or not settings.fold.enabled:
        return None
    return Storms(conversations, settings.fold)


def webhook_storms_for(
    settings: MattermostSettings | SlackSettings, folds: WebhookFolds | None
) -> WebhookStorms | None:
    """Webhook mode with `fold.enabled`: a storm to one destination goes out as digest posts, paced by
    the channel's `rate_limit` (the notifier then paces its posts one by one too)."""
    if settings.api_mode or not settings.fold.enabled:
        return None
    rule = StormRule(settings.rate_limit.per_second, settings.rate_limit.burst, settings.fold)
    chat = "mattermost" if isinstance(settings, MattermostSettings) else "slack"
    return WebhookStorms(chat, rule, settings.fold.max_items, folds)
