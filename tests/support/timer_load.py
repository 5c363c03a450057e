"""Many open incidents with timers of mixed lengths, for the head-of-line test and its benchmark.

Short timers (seconds) and long ones (10 minutes to an hour) are opened in random order; the question
is whether the short ones fire on time with thousands of long ones waiting in the broker.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import dataclass

import pika

from broker import names
from broker.publisher import ConfirmedPublisher, json_properties
from state.store import open_store
from tests.support.workers import event

SHORT = (3, 5, 8, 13)  # seconds
LONG = (600, 1200, 2400, 3600)


def routing(short: tuple[int, ...] = SHORT, long: tuple[int, ...] = LONG) -> str:
    """One single-step policy per timer length, matching hosts `t<seconds>-*`."""
    parts = ['timezone = "UTC"\n\n[contacts.alice.addresses]\nwebhook = "alice"\n']
    for seconds in (*short, *long):
        parts.append(
            f'[policies.t{seconds}]\nhosts = ["t{seconds}-*"]\n\n'
            f'[[policies.t{seconds}.steps]]\nafter = {seconds}\nnotify = ["alice"]\nchannels = ["webhook"]\n'
        )
    return "\n".join(parts)


def hosts(short_count: int, long_count: int, seed: int = 7) -> list[str]:
    """Host names of short and long timers, shuffled together; `t<seconds>-<n>`."""
    rng = random.Random(seed)
    names = [
        f"t{rng.choice(SHORT) if number < short_count else rng.choice(LONG)}-{number}"
        for number in range(short_count + long_count)
    ]
    rng.shuffle(names)
    return names


def publish_problems(url: str, host_names: list[str]) -> float:
    """One PROBLEM per host, each stamped as it is published (confirmed, as the relay would); seconds taken."""
    started = time.monotonic()
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        publisher = ConfirmedPublisher(connection.channel())
        for host in host_names:
            problem = event(host={"id": host, "name": host, "display_name": host})
            publisher.publish(
                names.EVENTS_EXCHANGE,
                names.notify_key("webhook"),
                json.dumps(problem).encode(),
                json_properties(str(problem["event_id"])),
            )
    finally:
        connection.close()
    return time.monotonic() - started


@dataclass(frozen=True)
class Lateness:
    fired: int
    values: list[float]  # seconds past due, one per fired step

    def quantile(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def summary(self) -> str:
        if not self.values:
            return "none fired"
        return (
            f"n={self.fired} p50={self.quantile(0.5) * 1000:.0f} ms p90={self.quantile(0.9) * 1000:.0f} ms "
            f"p99={self.quantile(0.99) * 1000:.0f} ms max={max(self.values) * 1000:.0f} ms "
            f"mean={statistics.mean(self.values) * 1000:.0f} ms"
        )


def lateness(store_url: str) -> Lateness:
    """How late each fired step went out: claim time minus (opened + after); after is in the policy name."""
    store = open_store(store_url)
    try:
        values = []
        for incident in store.list_open():
            fired = store.fired_at(incident.id).get(1)
            if fired is not None:
                due = incident.opened_at.timestamp() + int(incident.policy.removeprefix("t"))
                values.append(fired.timestamp() - due)
        return Lateness(len(values), values)
    finally:
        store.close_store()


def wait_fired(store_url: str, count: int, timeout: float) -> Lateness:
    deadline = time.monotonic() + timeout
    while True:
        result = lateness(store_url)
        if result.fired >= count or time.monotonic() > deadline:
            return result
        time.sleep(1.0)
