"""Size limits of the chat APIs, applied before sending: a long plugin output is cut with a visible mark
instead of being refused (Mattermost's 400, Slack's `msg_too_long` / `invalid_blocks`).

Lengths are counted in code points (Go's runes, which is what Mattermost counts; Slack counts characters).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

TRUNCATION_MARK = "… (truncated)"

# Mattermost: `message` up to MaxPostSize runes (16383 on a current database, 4000 on an old one);
# `props` as JSON up to 800 000 runes and 1 MiB.
MATTERMOST_MESSAGE_RUNES = 16383
MATTERMOST_PROPS_RUNES = 800_000
MATTERMOST_PROPS_BYTES = 1024 * 1024

# Slack: chat.update refuses `text` over 4 000 characters (`msg_too_long`); chat.postMessage cuts at
# 40 000. Every message alertq posts may be edited later, so both use the stricter limit.
SLACK_TEXT = 4000
SLACK_BLOCKS = 50
SLACK_ATTACHMENTS = 100
SLACK_HEADER_TEXT = 150
SLACK_SECTION_TEXT = 3000
SLACK_SECTION_FIELDS = 10
SLACK_FIELD_TEXT = 2000
SLACK_CONTEXT_ELEMENTS = 10
SLACK_CONTEXT_TEXT = 3000
SLACK_ACTIONS_ELEMENTS = 25


def clip(text: str, limit: int, mark: str = TRUNCATION_MARK) -> str:
    """`text` in at most `limit` code points; when it had to be cut, it ends with `mark`."""
    if len(text) <= limit:
        return text
    if limit <= len(mark):
        return text[:limit]
    return text[: limit - len(mark)] + mark


# The tail of Slack mrkdwn cut in the middle of an entity (`&am`) or of a link / mention (`<http://…`):
# left as it is, Slack would show the markup itself.
_BROKEN_MRKDWN_TAIL = re.compile(r"(&[#a-zA-Z0-9]{0,6}|<[^<>]*)$")


def clip_mrkdwn(text: str, limit: int, mark: str = TRUNCATION_MARK) -> str:
    """`clip` for Slack mrkdwn (and plain text): never ends in half an `&amp;` entity or half a `<link>`."""
    if len(text) <= limit:
        return text
    if limit <= len(mark):
        return text[:limit]
    kept = _BROKEN_MRKDWN_TAIL.sub("", text[: limit - len(mark)])
    return kept + mark


# -- Slack ----------------------------------------------------------------------------------------


def _clip_text_object(holder: dict[str, Any], key: str, limit: int) -> None:
    value = holder.get(key)
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        value["text"] = clip_mrkdwn(value["text"], limit)


def fit_slack_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `blocks` within Block Kit's documented limits: at most 50 blocks (the last one kept
    says how many were left out), header and section texts, section fields, context and actions
    elements. Block kinds alertq does not build are passed on as they are. Button values are never cut
    (a cut ack token would be worse than a refused message; alertq's are far below 2 000)."""
    fitted = copy.deepcopy(blocks)
    if len(fitted) > SLACK_BLOCKS:
        left_out = len(fitted) - (SLACK_BLOCKS - 1)
        fitted = [
            *fitted[: SLACK_BLOCKS - 1],
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"… {left_out} more blocks left out"}]},
        ]
    for block in fitted:
        kind = block.get("type")
        if kind == "header":
            _clip_text_object(block, "text", SLACK_HEADER_TEXT)
        elif kind == "section":
            _clip_text_object(block, "text", SLACK_SECTION_TEXT)
            fields = block.get("fields")
            if isinstance(fields, list):
                del fields[SLACK_SECTION_FIELDS:]
                for field in fields:
                    if isinstance(field, dict) and isinstance(field.get("text"), str):
                        field["text"] = clip_mrkdwn(field["text"], SLACK_FIELD_TEXT)
        elif kind == "context":
            elements = block.get("elements")
            if isinstance(elements, list):
                del elements[SLACK_CONTEXT_ELEMENTS:]
                for element in elements:
                    if isinstance(element, dict) and isinstance(element.get("text"), str):
                        element["text"] = clip_mrkdwn(element["text"], SLACK_CONTEXT_TEXT)
        elif kind == "actions":
            elements = block.get("elements")
            if isinstance(elements, list):
                del elements[SLACK_ACTIONS_ELEMENTS:]
    return fitted


def fit_slack_attachments(attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most 100 attachments (`too_many_attachments`)."""
    return copy.deepcopy(attachments[:SLACK_ATTACHMENTS])


# -- Mattermost -----------------------------------------------------------------------------------


def mattermost_props_size(props: dict[str, Any]) -> tuple[int, int]:
    """(runes, bytes) of `props` as the server measures its JSON. Go's encoder writes `<`, `>`, `&` as
    `\\u003c` (6 characters each), so they are counted as such: an estimate that never falls short."""
    text = json.dumps(props, ensure_ascii=False, separators=(",", ":"))
    escaped = 5 * sum(text.count(c) for c in "<>&")
    return len(text) + escaped, len(text.encode("utf-8", "surrogatepass")) + escaped


def _fits(props: dict[str, Any], max_runes: int, max_bytes: int) -> bool:
    runes, size = mattermost_props_size(props)
    return runes <= max_runes and size <= max_bytes


# Strings that must reach the server as they are: ids, URLs, styles, the button's integration (its
# context carries the signed ack token) and a message menu's options (each value is a signed token;
# their texts are short already: workers/conversations/digest.py).
_KEEP_KEYS = frozenset({"id", "type", "style", "color", "integration", "url", "image_url", "thumb_url", "options"})


def _clipped(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return clip(value, cap)
    if isinstance(value, list):
        return [_clipped(item, cap) for item in value]
    if isinstance(value, dict):
        return {key: item if key in _KEEP_KEYS else _clipped(item, cap) for key, item in value.items()}
    return value


def _longest(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return max((_longest(item) for item in value), default=0)
    if isinstance(value, dict):
        return max((_longest(item) for key, item in value.items() if key not in _KEEP_KEYS), default=0)
    return 0


def fit_mattermost_props(
    props: dict[str, Any], max_runes: int = MATTERMOST_PROPS_RUNES, max_bytes: int = MATTERMOST_PROPS_BYTES
) -> dict[str, Any]:
    """`props` within the server's size limits: when too large, every text in it (attachment texts,
    field values, …) is cut to the longest length that fits, the longest texts first. Returned as is
    when it fits, or when even cutting every text cannot make it fit (the server will say why)."""
    if _fits(props, max_runes, max_bytes):
        return props
    low, high = 0, _longest(props)  # the cap `low` is known to fit once found; `high` does not fit
    if not _fits(_clipped(props, low), max_runes, max_bytes):
        return props
    while high - low > 1:
        middle = (low + high) // 2
        if _fits(_clipped(props, middle), max_runes, max_bytes):
            low = middle
        else:
            high = middle
    clipped: dict[str, Any] = _clipped(props, low)
    return clipped
