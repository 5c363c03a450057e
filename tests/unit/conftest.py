"""The fast tier: pure functions only, no broker, no processes, no network (`make unit`, seconds).

Settings are built from dicts here (`Settings.model_validate`), never from the environment; the
environment's ALERTQ_ variables are removed all the same, so a developer's shell cannot change a result.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_alertq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ALERTQ_"):
            monkeypatch.delenv(key)
