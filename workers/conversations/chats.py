"""The three things a conversation asks of a chat, on the API clients of delivery/chat/: post a root, edit
it, reply in its thread. Each raises the clients' outcomes (`Retryable`, `Permanent`, `PostNotFound` when
the root is gone, `PostNotEditable`)."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from delivery.chat import MattermostApi, RateBudget, SlackApi
from delivery.chat.mattermost_api import api_base
from schemas.alert import AlertEvent
from schemas.channels import AckSettings, MattermostSettings, SlackSettings
from workers.conversations import digest, render
from workers.conversations.destination import Chat, Destination, channel_for, endpoint_hash

DIGEST_EVENT = "alertq_digest_part"  # Slack message metadata's event_type on digest parts


@dataclass(frozen=True)
class PostRef:
    channel: str  # the chat's channel id (Mattermost channel id, Slack channel id)
    id: str  # Mattermost post id, Slack ts


class ConversationChat(ABC):
    chat: Chat

    @abstractmethod
    def destination(self, event: AlertEvent) -> Destination: ...

    @abstractmethod
    def post_root(self, destination: Destination, view: render.RootView, key: str) -> PostRef:
        """Post the root; `key` is the same whenever the same event posts the same conversation's root
        again (the chat's idempotency key, where it has one)."""

    @abstractmethod
    def edit_root(self, root: PostRef, view: render.RootView) -> None: ...

    @abstractmethod
    def reply(self, root: PostRef, event: AlertEvent, after: str | None = None) -> PostRef: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- digests (storms.py) --------------------------------------------------------------------------

    def digest_signing(self) -> AckSettings | None:
        """The `[ack]` settings a digest's Acknowledge buttons are signed with; None: no buttons."""
        return None

    @abstractmethod
    def post_capacity(self, destination: Destination, within: float) -> int:
        """How many posts the chat's rate limit lets out to `destination` within `within` seconds."""

    @abstractmethod
    def post_digest(self, destination: Destination, view: digest.PartView, key: str) -> PostRef:
        """Post a digest part; `key` is the same whenever the same part is posted again."""

    @abstractmethod
    def find_digest(self, destination: Destination, key: str, since: float) -> PostRef | None:
        """The part posted with `key` since `since` (epoch seconds), if the chat can tell: a post whose
        answer was lost to a crash is then recorded, not posted twice."""

    @abstractmethod
    def edit_digest(self, part: PostRef, view: digest.PartView) -> None: ...

    @abstractmethod
    def reply_text(self, root: PostRef, text: str) -> PostRef: ...


class MattermostChat(ConversationChat):
    chat = "mattermost"

    def __init__(self, settings: MattermostSettings, api: MattermostApi | None = None) -> None:
        assert settings.api_url is not None and settings.bot_token is not None  # MattermostSettings checks
        self.settings = settings
        limit = settings.api_rate_limit
        self.api = api or MattermostApi(
            settings.api_url,
            settings.bot_token,
            settings.http,
            budget=RateBudget.for_server(limit.per_second, limit.burst),
        )
        self.endpoint = endpoint_hash(api_base(settings.api_url))

    def destination(self, event: AlertEvent) -> Destination:
        return Destination("mattermost", self.endpoint, channel_for(event, self.settings.channel))

    def post_root(self, destination: Destination, view: render.RootView, key: str) -> PostRef:
        channel_id = self.api.resolve(destination.channel)
        attachments = render.mattermost_root(view, self.settings, time.time())
        post = self.api.create_post(channel_id, "", attachments=attachments, pending_post_id=key)
        return PostRef(post.channel_id or channel_id, post.id)

    def edit_root(self, root: PostRef, view: render.RootView) -> None:
        self.api.patch_post(root.id, attachments=render.mattermost_root(view, self.settings, time.time()))

    def reply(self, root: PostRef, event: AlertEvent, after: str | None = None) -> PostRef:
        post = self.api.create_post(root.channel, render.mattermost_reply(event, self.settings, after), root_id=root.id)
        return PostRef(post.channel_id or root.channel, post.id)

    def close(self) -> None:
        self.api.close()

    def digest_signing(self) -> AckSettings | None:
        settings = self.settings
        two_way = settings.two_way and settings.ack.signing_secret is not None and settings.ack_url is not None
        return settings.ack if two_way else None

    def post_capacity(self, destination: Destination, within: float) -> int:
        return self.api.budget.capacity(time.monotonic(), within)

    def post_digest(self, destination: Destination, view: digest.PartView, key: str) -> PostRef:
        channel_id = self.api.resolve(destination.channel)
        # Mattermost answers a create with a pending_post_id it saw in the last 30 s with that post.
        post = self.api.create_post(
            channel_id,
            digest.mattermost_digest(view, self.settings),
            attachments=digest.mattermost_ack_attachments(view, self.settings) or None,
            pending_post_id=key,
        )
        return PostRef(post.channel_id or channel_id, post.id)

    def find_digest(self, destination: Destination, key: str, since: float) -> PostRef | None:
        return None  # pending_post_id (above) answers a repeat within 30 s

    def edit_digest(self, part: PostRef, view: digest.PartView) -> None:
        message = digest.mattermost_digest(view, self.settings)
        if self.digest_signing() is None:
            self.api.patch_post(part.id, message=message)
            return
        # A patch's props replace the post's whole map: the buttons of the lines still open, or none.
        attachments = digest.mattermost_ack_attachments(view, self.settings)
        self.api.patch_post(part.id, message=message, attachments=attachments)

    def reply_text(self, root: PostRef, text: str) -> PostRef:
        post = self.api.create_post(root.channel, text, root_id=root.id)
        return PostRef(post.channel_id or root.channel, post.id)


class SlackChat(ConversationChat):
    chat = "slack"

    def __init__(self, settings: SlackSettings, api: SlackApi | None = None) -> None:
        assert settings.bot_token is not None and settings.api_url is not None  # SlackSettings checks
        self.settings = settings
        post, update = settings.api_post_rate_limit, settings.api_update_rate_limit
        self.api = api or SlackApi(
            settings.bot_token,
            settings.http,
            settings.api_url,
            post_per_second=post.per_second,
            post_burst=post.burst,
            update_per_second=update.per_second,
            update_burst=update.burst,
        )
        self.endpoint = endpoint_hash(settings.api_url)
        self._root_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def destination(self, event: AlertEvent) -> Destination:
        return Destination("slack", self.endpoint, channel_for(event, self.settings.channel))

    def post_root(self, destination: Destination, view: render.RootView, key: str) -> PostRef:
        # chat.postMessage has no idempotency key: a root whose answer a crash lost is posted again. So
        # one root post per channel is in flight in this worker, and a crash doubles at most that one;
        # Slack takes about one post per second per channel anyway, so the lanes lose nothing by it.
        root = render.slack_root(view, self.settings, time.time())
        with self._root_lock(destination.channel):
            message = self.api.post_message(
                destination.channel, root.text, blocks=root.blocks, attachments=root.attachments
            )
        return PostRef(message.channel, message.ts)

    def _root_lock(self, channel: str) -> threading.Lock:
        with self._locks_lock:
            return self._root_locks.setdefault(channel, threading.Lock())

    def edit_root(self, root: PostRef, view: render.RootView) -> None:
        shown = render.slack_root(view, self.settings, time.time())
        self.api.update_message(root.channel, root.id, shown.text, blocks=shown.blocks, attachments=shown.attachments)

    def reply(self, root: PostRef, event: AlertEvent, after: str | None = None) -> PostRef:
        message = self.api.post_message(
            root.channel, render.slack_reply(event, self.settings, after), thread_ts=root.id
        )
        return PostRef(message.channel, message.ts)

    def close(self) -> None:
        self.api.close()

    def digest_signing(self) -> AckSettings | None:
        two_way = self.settings.two_way and self.settings.ack.signing_secret is not None
        return self.settings.ack if two_way else None

    def post_capacity(self, destination: Destination, within: float) -> int:
        return self.api.post_budget(destination.channel).capacity(time.monotonic(), within)

    def post_digest(self, destination: Destination, view: digest.PartView, key: str) -> PostRef:
        shown = digest.slack_digest(view, self.settings)
        marked = {"event_type": DIGEST_EVENT, "event_payload": {"part": key}}
        message = self.api.post_message(destination.channel, shown.text, blocks=shown.blocks, metadata=marked)
        return PostRef(message.channel, message.ts)

    def find_digest(self, destination: Destination, key: str, since: float) -> PostRef | None:
        # chat.postMessage has no idempotency key: look for the part's mark in the channel's history.
        found = self.api.find_marked(destination.channel, since, DIGEST_EVENT, {"part": key})
        return PostRef(found.channel, found.ts) if found is not None else None

    def edit_digest(self, part: PostRef, view: digest.PartView) -> None:
        shown = digest.slack_digest(view, self.settings)
        self.api.update_message(part.channel, part.id, shown.text, blocks=shown.blocks)

    def reply_text(self, root: PostRef, text: str) -> PostRef:
        message = self.api.post_message(root.channel, text, thread_ts=root.id)
        return PostRef(message.channel, message.ts)
