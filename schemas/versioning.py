"""Message versioning: `schema` is `<name>/<major>[.<minor>]`.

A reader accepts any minor version of the majors it knows (minor versions only add fields) and refuses
an unknown major outright, so the message is dead-lettered as `unsupported-schema` instead of being
half-understood.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


class UnsupportedSchema(Exception):
    """The message names a schema or major version this reader does not know.

    Deliberately not a ValueError: pydantic lets it through unwrapped, so callers can tell it from an
    ordinary validation error.
    """


def _checker(name: str, *majors: int) -> AfterValidator:
    def check(value: str) -> str:
        base, _, version = value.partition("/")
        if base != name or version.split(".", 1)[0] not in {str(major) for major in majors}:
            known = " or ".join(f"{name}/{major}.x" for major in majors)
            raise UnsupportedSchema(f"schema {value!r} is not {known}")
        return value

    return AfterValidator(check)


SchemaName = Annotated[str, _checker("alertq.alert", 1)]
# alertq.ack/1: an acknowledgement; alertq.ack/2: any action (schemas/ack.py says why a new major).
AckSchemaName = Annotated[str, _checker("alertq.ack", 1, 2)]


def major_of(schema: str) -> int:
    return int(schema.partition("/")[2].split(".", 1)[0])


TimerSchemaName = Annotated[str, _checker("alertq.timer", 1)]
