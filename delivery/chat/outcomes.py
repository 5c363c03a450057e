"""What the chat API clients raise besides the runtime's `Retryable` and `Permanent`: "not found".

A conversation keeps references (Mattermost post ids, Slack `ts`) and edits or replies to them later.
When the referenced post is gone (deleted by a user, or the reference is stale), the conversation must
post a new root instead, so that a lost reference never loses a notification: `PostNotFound` is the
outcome it catches for that. A destination that does not exist (`ChannelNotFound`) is a configuration
problem. Both are `Permanent`, so a caller that does not catch them still dead-letters the notification
with a clear reason instead of retrying forever or dropping it.
"""

from __future__ import annotations

from delivery.outcomes import Permanent, Retryable


class NotFound(Permanent):
    """The chat says the thing an operation refers to does not exist. `what` says which kind
    ("post", "channel", "user", "team"), `ref` the id or name alertq used (never a secret)."""

    def __init__(self, reason: str, *, what: str, ref: str) -> None:
        super().__init__(reason)
        self.what = what
        self.ref = ref


class PostNotFound(NotFound):
    """The post (Mattermost) or message (Slack) to edit or to reply to is gone: post a new root."""

    def __init__(self, reason: str, *, ref: str) -> None:
        super().__init__(reason, what="post", ref=ref)


class ChannelNotFound(NotFound):
    """The destination does not resolve: no such team, channel or user (Mattermost). After a channel was
    renamed or re-created, `MattermostApi.forget(destination)` makes the next call resolve it afresh."""


class PostNotEditable(Permanent):
    """The post exists but the chat no longer lets the bot edit it (Mattermost's edit time limit or an
    archived channel, Slack's `edit_window_closed`): say it in the thread instead of editing the root."""

    def __init__(self, reason: str, *, ref: str) -> None:
        super().__init__(reason)
        self.ref = ref


class Deferred(Retryable):
    """Not a failure: the event must wait for something another delivery is doing (its conversation's
    root being posted by another worker) and comes back after `after` seconds through the broker's
    delay queues. The runtime does not count it as an attempt; the age limit still applies."""

    def __init__(self, reason: str, after: float) -> None:
        super().__init__(reason, after=after)
