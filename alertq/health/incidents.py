"""Open incidents, for `alertq status`: the hook the escalator fills in.

The escalator (DESIGN.md section 7) owns the incident store. Until it exists this answers None,
which status shows as "n/a (escalator not installed)" (null in --json, no perfdata) and never
counts as a problem. The escalator's engineer: return the number of open (unacknowledged problem)
incidents from the state store named in the settings.
"""

from __future__ import annotations

from schemas.settings import Settings


def open_incidents(settings: Settings) -> int | None:
    del settings
    return None
