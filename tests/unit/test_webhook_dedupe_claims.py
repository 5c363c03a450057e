"""Webhook mode's dedupe decisions in the store (workers/conversations/store.py `webhook_claim`): the first
copy of a notification claims its post, another contact's copy waits for it and then folds into it, and
the same contact told again posts again without taking or touching the first copy's claim."""

from __future__ import annotations

from pathlib import Path

from workers.conversations.store import ConversationStore, WebhookDecision

KEY = ("mattermost:abc:", "web|disk", "PROBLEM|1|0")


def claim(store: ConversationStore, event_id: str, contact: str, now: float) -> WebhookDecision:
    return store.webhook_claim(*KEY, event_id=event_id, contact=contact, created=now, now=now, lease=30.0, window=120.0)


def test_the_same_contact_told_again_posts_again_and_leaves_the_first_copys_claim(tmp_path: Path) -> None:
    store = ConversationStore(f"sqlite:///{tmp_path}/c.db")
    try:
        assert claim(store, "e1", "alice", 1000.0) is WebhookDecision.POST
        assert claim(store, "e2", "bob", 1000.1) is WebhookDecision.WAIT  # alice's copy is being posted
        assert claim(store, "e3", "alice", 1000.2) is WebhookDecision.AGAIN
        assert claim(store, "e4", "bob", 1000.3) is WebhookDecision.WAIT  # still e1's claim, not e3's
        store.webhook_posted(*KEY, "e1", 1000.4)
        assert claim(store, "e2", "bob", 1001.0) is WebhookDecision.FOLD
        assert claim(store, "e1", "alice", 1001.1) is WebhookDecision.DONE  # a redelivery of the first
    finally:
        store.close()
