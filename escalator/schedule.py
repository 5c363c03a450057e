"""When each step of a policy falls due.

Steps are numbered from 1. Step 1 is due `steps[0].after` after the incident opened, each later step
`after` its own delay past the previous step's due time (not its firing time, so lateness never adds
up; decisions.py counts from the firing time only for a step sent long after it was due). After the
last step, that step repeats `repeat` times: a policy of 2 steps with `repeat = 3` has steps 1 to 5,
where 3, 4 and 5 retell step 2.
"""

from __future__ import annotations

from datetime import datetime

from schemas.routing import Policy, Step


def step_count(policy: Policy) -> int:
    return len(policy.steps) + policy.repeat


def step_of(policy: Policy, number: int) -> Step:
    return policy.steps[min(number, len(policy.steps)) - 1]


def first_due(policy: Policy, opened_at: datetime) -> datetime:
    return opened_at + policy.steps[0].after


def next_due(policy: Policy, number: int, due: datetime) -> datetime | None:
    """When step `number + 1` falls due, given that step `number` was due at `due`; None after the last."""
    if number >= step_count(policy):
        return None
    return due + step_of(policy, number + 1).after
