"""Golden files: what a channel sends, kept under tests/golden/<channel>/ and reviewed like code.

Regenerate after an intended change with `ALERTQ_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_channel_*.py`,
then read the diff (`git diff tests/golden`): the golden files are the specification of every message.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
UPDATING = os.environ.get("ALERTQ_UPDATE_GOLDEN") == "1"


def check_golden(channel: str, name: str, actual: str) -> None:
    path = GOLDEN_DIR / channel / name
    if UPDATING:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"no golden file {path}: run with ALERTQ_UPDATE_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True), str(path), "sent", n=1
            )
        )
        raise AssertionError(f"{path} differs from what was sent (ALERTQ_UPDATE_GOLDEN=1 regenerates):\n{diff}")
