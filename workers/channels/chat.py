"""What the two chat channels (Mattermost, Slack) share: the two modes and the plumbing between them.

API mode (a bot token): one conversation per incident (workers/conversations/), storms as digests that
are edited as their problems recover. Webhook mode: one post per notification and destination however
many contacts it went to (the dedupe store), storms as digest posts of their own. A chat module says
only what is its own: how a webhook post and a webhook digest look, and what a webhook destination is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from delivery.http import HttpClient
from schemas.alert import AlertEvent
from schemas.channels import ChannelSettings, MattermostSettings, SlackSettings
from workers.channels.base import Notifier
from workers.folds import NO_HOLD, Hold, hold_of

if TYPE_CHECKING:  # the conversations import the chat modules
    from workers.conversations.digest import PartView

ChatSettings = TypeVar("ChatSettings", MattermostSettings, SlackSettings)


class ChatNotifier(Notifier, Generic[ChatSettings]):
    settings_type: ClassVar[type[MattermostSettings] | type[SlackSettings]]

    def __init__(self, settings: ChannelSettings) -> None:
        super().__init__(settings)
        if not isinstance(settings, self.settings_type):
            raise TypeError(f"{type(self).__name__} needs {self.settings_type.__name__}")
        self.config: ChatSettings = settings  # type: ignore[assignment]  # checked just above
        self.http = HttpClient(settings.http, user_agent=f"alertq-{self.name}")
        from workers.conversations.setup import conversations_for, folds_for, storms_for, webhook_storms_for

        self.conversations = conversations_for(self.config)
        self.folds = folds_for(self.config)
        self.storms = storms_for(self.config, self.conversations)
        self.webhook_storms = webhook_storms_for(self.config, self.folds)
        self._webhook_target = self.webhook_target()  # made once: it is asked several times per delivery

    # -- what each chat says -------------------------------------------------------------------------------

    def webhook_target(self) -> str:
        """Webhook mode's rate-limit key: the chat and a short hash of the (secret) URL."""
        raise NotImplementedError

    def destination(self, event: AlertEvent) -> str:
        """Webhook mode: where the event's post lands (the dedupe's and the storm rule's key)."""
        raise NotImplementedError

    def post_webhook(self, url: str, event: AlertEvent) -> None:
        raise NotImplementedError

    def post_digest(self, destination: str, view: PartView) -> None:
        """Webhook mode: one part of a storm's digest."""
        raise NotImplementedError

    # -- the same for both ------------------------------------------------------------------------------------

    def target(self, event: AlertEvent) -> str:
        if self.conversations is not None:
            return self.conversations.target(event)
        return self._webhook_target

    def paces_itself(self, event: AlertEvent) -> bool:
        # The API client keeps to the chat's rate limits; webhook mode's storm rule to the webhook's.
        return self.conversations is not None or self.webhook_storms is not None

    def may_fold(self, event: AlertEvent) -> bool:
        return self.storms is not None or self.webhook_storms is not None

    def fold(self, events: list[AlertEvent]) -> dict[str, object] | None:
        if self.storms is not None:
            return self.storms.fold(events)
        if self.webhook_storms is not None and events:
            return self.webhook_storms.fold(self.target(events[0]), events, self.destination, self.post_digest)
        return None

    def fold_hold(self) -> Hold:
        return hold_of(self.config.fold) if self.storms is not None or self.webhook_storms is not None else NO_HOLD

    def send(self, event: AlertEvent, body: bytes | None = None) -> None:
        if self.conversations is not None:
            self.conversations.deliver(event)
            return
        assert self.config.url is not None  # ChannelSettings.problem, checked in Notifier.__init__
        url = self.config.url.get_secret_value()
        target = self.target(event)

        def post() -> None:
            if self.webhook_storms is not None:
                self.webhook_storms.rule.pace(target)
            self.post_webhook(url, event)

        if self.folds is None:
            post()
            return
        self.folds.post(self.destination(event), event, post)

    def close(self) -> None:
        self.http.close()
        for part in (self.conversations, self.folds):
            if part is not None:
                part.close()
