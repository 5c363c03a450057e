"""alertq-enqueue's entry point called in-process, as the core would run it but without a process per call.

No broker answers (the URL names a closed port), so an accepted event ends in the spool: what is
there after a call is exactly what the call stored. Fast enough for hundreds of calls per test.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from producer.enqueue import main
from tests.support.rabbit import free_port


def argv_text(raw: bytes) -> str:
    """A command-line argument as Python on Linux hands it over: undecodable bytes surrogate-escaped."""
    return raw.decode("utf-8", "surrogateescape")


@dataclass
class Outcome:
    code: int
    stderr: str
    bodies: list[bytes] = field(default_factory=list)  # the spool files this call wrote, oldest first

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.bodies]

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()

    @property
    def warnings(self) -> list[str]:
        """stderr lines other than the one about the broker being unreachable (expected here)."""
        return [line for line in self.lines if "broker unreachable" not in line]


class InProcessEnqueue:
    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = spool_dir

    def __call__(self, argv: list[str], stdin: bytes = b"") -> Outcome:
        before = self.stored()
        err = io.StringIO()
        saved = sys.stdin, sys.stderr
        sys.stdin, sys.stderr = io.TextIOWrapper(io.BytesIO(stdin)), err
        try:
            code = main(argv)
        finally:
            sys.stdin, sys.stderr = saved
        new = sorted(self.stored() - before)
        return Outcome(code, err.getvalue(), [(self.spool_dir / name).read_bytes() for name in new])

    def stored(self) -> set[str]:
        """Names of the event files in the spool."""
        if not self.spool_dir.is_dir():
            return set()
        return {path.name for path in self.spool_dir.iterdir() if path.suffix == ".json"}


@contextmanager
def enqueue_in_process(workdir: Path) -> Iterator[InProcessEnqueue]:
    """An environment of its own (no ALERTQ_* from outside, an empty config file, a spool under
    `workdir`, a broker URL nobody listens on) for calling the entry point."""
    config = workdir / "alertq.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTQ_")}
    env.update(
        ALERTQ_CONFIG=str(config),
        ALERTQ_SPOOL__DIR=str(workdir / "spool"),
        ALERTQ_BROKER__URLS=f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        ALERTQ_BROKER__CONNECT_TIMEOUT="5",
    )
    with mock.patch.dict(os.environ, env, clear=True):
        yield InProcessEnqueue(workdir / "spool")
