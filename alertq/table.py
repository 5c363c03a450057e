"""Plain text tables for people: columns sized to their content, long cells cut with an ellipsis."""

from __future__ import annotations

from collections.abc import Sequence


def render(headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 48) -> str:
    cells = [[_cell(v, max_width) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: object, max_width: int) -> str:
    text = "-" if value is None or value == "" else " ".join(str(value).split())
    return text if len(text) <= max_width else text[: max_width - 1] + "…"
