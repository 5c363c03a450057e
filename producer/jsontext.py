"""An event as JSON text without importing `json`, for alertq-enqueue.

`json` imports `re` (its decoder's and encoder's patterns), which costs the enqueue command about as much
as all its own work. An event is dicts, lists, text, whole numbers, booleans and None; `dumps` writes
those exactly as `json.dumps(value, ensure_ascii=False, separators=(",", ":"))` does (a unit test holds
the two to the same bytes), and hands anything else (a float, a key that is no text) to `json` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# What json escapes with ensure_ascii=False: the quote, the backslash and the control characters below
# U+0020, these five by their short names, the others as \u00XX with lowercase hex digits.
_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\b"): "\\b", ord("\f"): "\\f", ord("\n"): "\\n"})
_ESCAPES.update({ord("\r"): "\\r", ord("\t"): "\\t"})


class _NotPlain(Exception):
    """A value outside what `_encode` writes itself."""


def dumps(value: object) -> str:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"))`, the same text."""
    parts: list[str] = []
    try:
        _encode(value, parts.append)
    except _NotPlain:
        import json

        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "".join(parts)


def _string(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _encode(value: object, out: Callable[[str], None]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif type(value) is str:
        out(_string(value))
    elif type(value) is int:
        out(int.__repr__(value))
    elif type(value) is dict:
        out("{")
        separator = ""
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            out(separator)
            out(_string(key))
            out(":")
            _encode(item, out)
            separator = ","
        out("}")
    elif type(value) is list or type(value) is tuple:
        out("[")
        separator = ""
        for item in value:
            out(separator)
            _encode(item, out)
            separator = ","
        out("]")
    else:
        raise _NotPlain
