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


def _checker(name: str, major: int) -> AfterValidator:
    def check(value: str) -> str:
        base, _, version = value.partition("/")
        if base != name or version.split(".", 1)[0] != str(major):
            raise UnsupportedSchema(f"schema {value!r} is not {name}/{major}.x")
        return value

    return AfterValidator(check)


SchemaName = Annotated[str, _checker("alertq.alert", 1)]
AckSchemaName = Annotated[str, _checker("alertq.ack", 1)]
TimerSchemaName = Annotated[str, _checker("alertq.timer", 1)]
