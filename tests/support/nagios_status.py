"""status.dat of a Nagios 4 core, parsed: what a test checks the core's state with.

The file is blocks of `key=value` lines (`hoststatus { … }`); the core rewrites it atomically every
`status_update_interval` seconds, so a read never sees half a file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Status:
    """status.dat, parsed: every block as a dict of its `key=value` lines (values stay strings)."""

    blocks: dict[str, list[dict[str, str]]]

    def all(self, kind: str) -> list[dict[str, str]]:
        """Every block of one kind: hoststatus, servicestatus, contactstatus, servicecomment, …"""
        return self.blocks.get(kind, [])

    @property
    def program(self) -> dict[str, str]:
        return self.all("programstatus")[0]

    def host(self, host_name: str) -> dict[str, str]:
        return _one(self.all("hoststatus"), host_name=host_name)

    def service(self, host_name: str, description: str) -> dict[str, str]:
        return _one(self.all("servicestatus"), host_name=host_name, service_description=description)

    def comments(self, host_name: str, description: str | None = None) -> list[dict[str, str]]:
        """Comments on a host, or on one of its services (acknowledgements leave one, entry_type=4)."""
        if description is None:
            return [c for c in self.all("hostcomment") if c["host_name"] == host_name]
        return [
            c
            for c in self.all("servicecomment")
            if c["host_name"] == host_name and c["service_description"] == description
        ]


def _one(blocks: list[dict[str, str]], **match: str) -> dict[str, str]:
    found = [b for b in blocks if all(b.get(k) == v for k, v in match.items())]
    if len(found) != 1:
        raise KeyError(f"{len(found)} status blocks match {match}")
    return found[0]


def parse_status(text: str) -> Status:
    blocks: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if current is None and line.endswith("{"):
            current = {}
            blocks.setdefault(line[:-1].strip(), []).append(current)
        elif line == "}":
            current = None
        elif current is not None:
            key, _, value = line.partition("=")
            current[key] = value
    return Status(blocks)
