"""A fold lane's batch that goes out one by one runs side by side on the target's lane threads, in
groups that keep what must stay in order together (workers/worker.py `_in_order_groups`)."""

from __future__ import annotations

import json
from typing import Any

from schemas.alert import AlertEvent, parse_alert
from tests.support.workers import event
from workers.worker import _in_order_groups


def alert(host: str, contact: str, kind: str = "PROBLEM") -> AlertEvent:
    overrides: dict[str, Any] = {
        "host": {"id": host, "name": host, "display_name": host, "address": "10.0.0.1"},
        "contact": {"name": contact, "email": None, "pager": None},
        "notification_type": kind,
    }
    return parse_alert(json.dumps(event("mattermost", **overrides)).encode())


def names(groups: list[list[tuple[str, AlertEvent]]]) -> list[list[str]]:
    return [[label for label, _ in group] for group in groups]


def test_other_contacts_copies_and_an_incidents_follow_ups_stay_in_order_in_one_group() -> None:
    items = [
        ("web-a", alert("web", "alice")),
        ("db-a", alert("db", "alice")),
        ("web-b", alert("web", "bob")),  # another contact's copy: after alice's, to fold into it
        ("web-a-recovery", alert("web", "alice", "RECOVERY")),  # after the problem
    ]
    assert names(_in_order_groups(items)) == [["web-a", "web-b", "web-a-recovery"], ["db-a"]]


def test_the_same_notification_for_the_same_contact_again_runs_beside_the_first() -> None:
    items = [(str(n), alert("web", "alice")) for n in range(3)]
    assert names(_in_order_groups(items)) == [["0"], ["1"], ["2"]]
