"""A progress bar on stderr when it is a terminal; nothing otherwise (scripts, logs, tests)."""

from __future__ import annotations

import sys
from typing import Any

import click


class TerminalProgress:
    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None

    def begin(self, total: int) -> None:
        if total > 0 and sys.stderr.isatty():
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True)
            self._bar.__enter__()

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
