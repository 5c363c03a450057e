"""The escalator's incident store, the same tests against SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from state.store import IncidentStore, SqliteIncidentStore, open_store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WORKERS = 8


@pytest.fixture
def store(store_url: str) -> Iterator[IncidentStore]:
    opened = open_store(store_url)
    yield opened
    opened.close_store()


def test_one_open_incident_per_key(store: IncidentStore) -> None:
    first, new = store.open("db-01/pg", "db-team", NOW + timedelta(minutes=5), NOW)
    assert new
    assert (first.key, first.policy, first.next_step, first.is_open) == ("db-01/pg", "db-team", 1, True)
    assert (first.opened_at, first.due_at) == (NOW, NOW + timedelta(minutes=5))
    again, new = store.open("db-01/pg", "db-team", NOW + timedelta(minutes=9), NOW + timedelta(minutes=1))
    assert not new
    assert again == first
    other, new = store.open("db-02", "db-team", None, NOW)
    assert new and other.id != first.id
    assert store.get(first.id) == first
    assert store.get(first.id + 1000) is None
    assert store.open_for("db-01/pg") == first


def test_close_then_reopen(store: IncidentStore) -> None:
    incident, _ = store.open("web01", "p", NOW, NOW)
    assert store.close(incident.id, "acknowledged by alice", NOW + timedelta(minutes=2))
    assert not store.close(incident.id, "recovered", NOW + timedelta(minutes=3)), "closed once only"
    closed = store.get(incident.id)
    assert closed is not None
    assert (closed.is_open, closed.close_reason, closed.closed_at) == (
        False,
        "acknowledged by alice",
        NOW + timedelta(minutes=2),
    )
    assert store.open_for("web01") is None
    reopened, new = store.open("web01", "p", NOW, NOW + timedelta(minutes=10))
    assert new and reopened.id != incident.id


def test_a_step_fires_once(store: IncidentStore) -> None:
    incident, _ = store.open("web01", "p", NOW + timedelta(minutes=5), NOW)
    after_one = NOW + timedelta(minutes=20)
    assert store.record_step(incident.id, 1, after_one, NOW + timedelta(minutes=5))
    assert not store.record_step(incident.id, 1, after_one, NOW + timedelta(minutes=6)), "a timer delivered twice"
    advanced = store.get(incident.id)
    assert advanced is not None and (advanced.next_step, advanced.due_at) == (2, after_one)
    assert store.record_step(incident.id, 2, None, NOW + timedelta(minutes=20))
    last = store.get(incident.id)
    assert last is not None and (last.next_step, last.due_at) == (3, None)
    assert store.fired_steps(incident.id) == [1, 2]


def test_no_step_fires_for_a_closed_incident(store: IncidentStore) -> None:
    incident, _ = store.open("web01", "p", NOW, NOW)
    store.close(incident.id, "recovered", NOW)
    assert not store.record_step(incident.id, 1, None, NOW)
    assert not store.record_step(incident.id + 1000, 1, None, NOW), "no such incident"
    assert store.fired_steps(incident.id) == []


def test_list_open_next_due_first(store: IncidentStore) -> None:
    store.open("late", "p", NOW + timedelta(hours=1), NOW)
    store.open("done", "p", None, NOW)
    store.open("soon", "p", NOW + timedelta(minutes=1), NOW)
    gone, _ = store.open("gone", "p", NOW, NOW)
    store.close(gone.id, "recovered", NOW)
    assert [i.key for i in store.list_open()] == ["soon", "late", "done"]
    assert [(i.next_step, i.due_at) for i in store.list_open()][:2] == [
        (1, NOW + timedelta(minutes=1)),
        (1, NOW + timedelta(hours=1)),
    ]


def test_state_survives_a_restart(store_url: str) -> None:
    first = open_store(store_url)
    incident, _ = first.open("web01", "p", NOW, NOW)
    first.record_step(incident.id, 1, None, NOW)
    first.close_store()
    second = open_store(store_url)
    try:
        assert second.open_for("web01") == second.get(incident.id)
        assert second.fired_steps(incident.id) == [1]
    finally:
        second.close_store()


def _race(store_url: str, action: Callable[[IncidentStore], Any]) -> list[Any]:
    """Run `action` in WORKERS threads at once, each with a store (a connection) of its own."""
    stores = [open_store(store_url) for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS)
    results: list[Any] = [None] * WORKERS

    def work(i: int) -> None:
        start.wait()
        results[i] = action(stores[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for opened in stores:
        opened.close_store()
    return results


def test_concurrent_opens_open_one_incident(store: IncidentStore, store_url: str) -> None:
    results = _race(store_url, lambda s: s.open("db-01/pg", "db-team", NOW, NOW))
    assert sum(1 for _, new in results if new) == 1
    assert len({incident.id for incident, _ in results}) == 1
    assert len(store.list_open()) == 1


def test_concurrent_records_fire_once(store: IncidentStore, store_url: str) -> None:
    incident, _ = store.open("db-01/pg", "db-team", NOW, NOW)
    results = _race(store_url, lambda s: s.record_step(incident.id, 1, NOW + timedelta(minutes=10), NOW))
    assert results.count(True) == 1
    assert store.fired_steps(incident.id) == [1]


def test_processes_share_one_incident(store: IncidentStore, store_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_claims_in_process, [store_url] * 4)
    assert len({incident_id for incident_id, _, _ in results}) == 1
    assert [new for _, new, _ in results].count(True) == 1
    assert [claimed for _, _, claimed in results].count(True) == 1
    assert store.fired_steps(results[0][0]) == [1]


def _claims_in_process(store_url: str) -> tuple[int, bool, bool]:
    store = open_store(store_url)
    try:
        incident, new = store.open("shared", "p", NOW, NOW)
        return incident.id, new, store.record_step(incident.id, 1, None, NOW)
    finally:
        store.close_store()


def test_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///var/alertq.db")
    assert isinstance(relative, SqliteIncidentStore)
    relative.close_store()
    assert (tmp_path / "var" / "alertq.db").is_file()
    with pytest.raises(ValueError, match="unknown scheme 'mysql'"):
        open_store("mysql://root@localhost/x")
    with pytest.raises(ValueError, match="no host"):
        open_store("sqlite://host/x.db")


def test_a_claimed_step_stays_unsent_until_marked_so_a_crash_in_between_is_sent_again(store: IncidentStore) -> None:
    incident, _ = store.open("web01", "p", NOW, NOW, event='{"kept": "as given"}')
    stored = store.get(incident.id)
    assert stored is not None and stored.event == '{"kept": "as given"}'
    assert store.record_step(incident.id, 1, NOW + timedelta(minutes=5), NOW)
    assert store.step_unsent(incident.id, 1), "claimed, not yet confirmed by the broker"
    store.mark_sent(incident.id, 1, NOW)
    assert not store.step_unsent(incident.id, 1)
    assert not store.step_unsent(incident.id, 2), "never claimed"
    assert store.fired_at(incident.id) == {1: NOW}

    assert store.record_step(incident.id, 2, None, NOW + timedelta(minutes=5))
    store.close(incident.id, "acknowledged", NOW + timedelta(minutes=6))
    assert not store.step_unsent(incident.id, 2), "an acknowledged incident sends nothing more"


def test_overdue_lists_open_incidents_past_due(store: IncidentStore) -> None:
    late, _ = store.open("late", "p", NOW - timedelta(minutes=10), NOW - timedelta(minutes=15))
    store.open("soon", "p", NOW + timedelta(minutes=1), NOW)
    store.open("finished", "p", None, NOW)
    closed, _ = store.open("closed", "p", NOW - timedelta(minutes=10), NOW - timedelta(minutes=15))
    store.close(closed.id, "recovered", NOW)
    assert [i.key for i in store.overdue(NOW - timedelta(minutes=1))] == ["late"]
    assert store.overdue(NOW - timedelta(minutes=11)) == []
    assert late.id in [i.id for i in store.overdue(NOW)]
