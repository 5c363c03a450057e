"""The channels, one module each; this registry names every one (`alertq worker <name>` looks it up here).

Adding a channel: its module with one `Notifier` subclass, its line below, and its settings class in
`schemas/channels.py` with its field in `ChannelsSettings` (a test keeps the two lists equal).
"""

from __future__ import annotations

from schemas.channels import ChannelSettings
from workers.channels.base import Notifier
from workers.channels.email import EmailNotifier
from workers.channels.mattermost import MattermostNotifier
from workers.channels.slack import SlackNotifier
from workers.channels.webhook import WebhookNotifier

NOTIFIERS: dict[str, type[Notifier]] = {
    notifier.name: notifier for notifier in (MattermostNotifier, SlackNotifier, EmailNotifier, WebhookNotifier)
}


def load_notifier(name: str, settings: ChannelSettings) -> Notifier:
    """The notifier of channel `name`; raises KeyError for a channel nobody registered, and
    `ConfigurationError` when its settings cannot work."""
    return NOTIFIERS[name](settings)
