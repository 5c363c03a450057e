"""What a pass does with each matching dead letter. Nothing here acks a message before it is safe:
purge acks at once (that is the point), export after the file is on disk, replay after the broker
confirmed the copy."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import IO, Any

from broker.dlq import archive
from broker.dlq.letter import DeadLetter
from broker.dlq.replay import NotReplayable, Target, replay_properties, target
from broker.dlq.scan import Context
from broker.pipeline import Outcome


class Collect:
    """list, show and the dry runs: remember the matches, take nothing."""

    needs_publisher = False
    reports_progress = False

    def __init__(self, keep_letters: bool = False) -> None:
        self.keep_letters = keep_letters
        self.letters: list[DeadLetter] = []
        self.summaries: list[dict[str, Any]] = []
        self.by_reason: Counter[str] = Counter()
        self.by_channel: Counter[str] = Counter()

    def start(self, context: Context) -> None:
        pass

    def take(self, letter: DeadLetter) -> None:
        self.by_reason[letter.reason] += 1
        self.by_channel[letter.channel or "-"] += 1
        self.summaries.append(letter.summary())
        if self.keep_letters:
            self.letters.append(letter)

    def finish(self, interrupted: bool) -> None:
        pass

    @property
    def busy(self) -> bool:
        return False


class Purge:
    needs_publisher = False
    reports_progress = False

    def __init__(self) -> None:
        self.purged = 0
        self.by_reason: Counter[str] = Counter()
        self._context: Context | None = None

    def start(self, context: Context) -> None:
        self._context = context

    def take(self, letter: DeadLetter) -> None:
        assert self._context is not None
        self._context.ack(letter.delivery_tag)
        self.purged += 1
        self.by_reason[letter.reason] += 1

    def finish(self, interrupted: bool) -> None:
        pass

    @property
    def busy(self) -> bool:
        return False


class Export:
    """Write each match as a JSON line; with `remove`, ack them once the file is fsynced."""

    needs_publisher = False
    reports_progress = False
    FLUSH_EVERY = 500

    def __init__(self, out: IO[str], remove: bool = False) -> None:
        self.out = out
        self.remove = remove
        self.exported = 0
        self.removed = 0
        self._unsynced: list[int] = []
        self._context: Context | None = None

    def start(self, context: Context) -> None:
        self._context = context

    def take(self, letter: DeadLetter) -> None:
        self.out.write(archive.dumps(letter) + "\n")
        self.exported += 1
        if self.remove:
            self._unsynced.append(letter.delivery_tag)
            if len(self._unsynced) >= self.FLUSH_EVERY:
                self._sync()

    def finish(self, interrupted: bool) -> None:
        self._sync()

    def _sync(self) -> None:
        self.out.flush()
        with contextlib.suppress(OSError, ValueError):  # a pipe or terminal: nothing to sync
            os.fsync(self.out.fileno())
        assert self._context is not None
        for tag in self._unsynced:
            self._context.ack(tag)
        self.removed += len(self._unsynced)
        self._unsynced.clear()

    @property
    def busy(self) -> bool:
        return False


@dataclass
class ReplayReport:
    replayed: int = 0
    unroutable: int = 0
    nacked: int = 0
    not_replayable: int = 0
    by_target: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)


class Replay:
    """Publish each match to its target with a confirm, then ack the dead letter.

    `window` unconfirmed messages at most; `rate` messages per second at most (None: as fast as the
    broker confirms). `dry_run` decides targets and publishes nothing."""

    def __init__(
        self, to_channel: str | None = None, rate: float | None = None, window: int = 1000, dry_run: bool = False
    ) -> None:
        self.to_channel = to_channel
        self.rate = rate
        self.window = window
        self.dry_run = dry_run
        self.needs_publisher = not dry_run
        self.reports_progress = not dry_run
        self.report = ReplayReport()
        self.would_replay: list[dict[str, Any]] = []
        self._pending: deque[tuple[DeadLetter, Target]] = deque()
        self._context: Context | None = None
        self._started = 0.0
        self._sent = 0
        self._pump_scheduled = False

    def start(self, context: Context) -> None:
        self._context = context
        self._started = time.monotonic()

    def take(self, letter: DeadLetter) -> None:
        try:
            where = target(letter, self.to_channel)
        except NotReplayable as exc:
            self.report.not_replayable += 1
            self.report.problems[str(exc)] += 1
            if self._context is not None and self.reports_progress:
                self._context.advance(1)
            return  # held: it stays dead-lettered
        if self.dry_run:
            self.report.by_target[str(where)] += 1
            self.would_replay.append({**letter.summary(), "target": str(where)})
            return
        self._pending.append((letter, where))
        self._pump()

    def finish(self, interrupted: bool) -> None:
        if interrupted:
            self._pending.clear()  # not published yet: they stay dead-lettered

    @property
    def busy(self) -> bool:
        context = self._context
        in_flight = context.publisher.in_flight if context and context.publisher else 0
        return bool(self._pending) or in_flight > 0

    def _pump(self) -> None:
        self._pump_scheduled = False
        context = self._context
        assert context is not None and context.publisher is not None
        publisher = context.publisher
        while self._pending and publisher.in_flight < self.window:
            if self.rate is not None:
                due = self._started + self._sent / self.rate
                wait = due - time.monotonic()
                if wait > 0:
                    self._schedule(wait)
                    return
            letter, where = self._pending.popleft()
            self._sent += 1
            publisher.publish(
                where.exchange,
                where.routing_key,
                letter.body,
                replay_properties(letter),
                functools.partial(self._settle, letter, where),
            )

    def _schedule(self, delay: float) -> None:
        if not self._pump_scheduled and self._context is not None:
            self._pump_scheduled = True
            self._context.call_later(delay, self._pump)

    def _settle(self, letter: DeadLetter, where: Target, outcome: Outcome) -> None:
        assert self._context is not None
        if outcome is Outcome.CONFIRMED:
            self._context.ack(letter.delivery_tag)
            self.report.replayed += 1
            self.report.by_target[str(where)] += 1
        elif outcome is Outcome.RETURNED:
            self.report.unroutable += 1
            self.report.problems[f"no queue bound for {where.routing_key} (is the channel enabled?)"] += 1
        else:
            self.report.nacked += 1
            self.report.problems[f"broker refused the copy for {where.routing_key}"] += 1
        self._context.advance(1)
        if self._pending and not self._pump_scheduled:
            self._schedule(0)
        self._context.settled()
