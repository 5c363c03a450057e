"""Nagios/Naemon status.dat, read for one object: `current_state` and `problem_has_been_acknowledged`.

The file is blocks of `key=value` lines (`servicestatus { … }`); the core rewrites it atomically (a
renamed temp file) every `status_update_interval` seconds, so one read never sees half a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def blocks(text: str) -> Iterator[tuple[str, dict[str, str]]]:
    kind: str | None = None
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if kind is None:
            if line.endswith("{") and not line.startswith("#"):
                kind, fields = line[:-1].strip(), {}
        elif line == "}":
            yield kind, fields
            kind = None
        else:
            key, _, value = line.partition("=")
            fields[key] = value


def find(path: Path, host_id: str, service_id: str | None) -> dict[str, str] | None:
    """The status block of the host (service_id None) or of its service, or None if there is none."""
    kind = "hoststatus" if service_id is None else "servicestatus"
    for found_kind, fields in blocks(path.read_text(errors="replace")):
        if found_kind != kind or fields.get("host_name") != host_id:
            continue
        if service_id is None or fields.get("service_description") == service_id:
            return fields
    return None
