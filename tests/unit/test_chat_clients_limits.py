"""Cutting messages to the chat APIs' limits before sending: counted in runes, with a visible mark."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from delivery.chat.limits import (
    MATTERMOST_MESSAGE_RUNES,
    SLACK_BLOCKS,
    TRUNCATION_MARK,
    clip,
    clip_mrkdwn,
    fit_mattermost_props,
    fit_slack_attachments,
    fit_slack_blocks,
    mattermost_props_size,
)

# Four bytes in UTF-8, one rune: a limit counted in bytes would cut these four times too early.
EMOJI = "\U0001f525"


def test_clip_counts_runes_not_bytes() -> None:
    exactly = EMOJI * MATTERMOST_MESSAGE_RUNES
    assert clip(exactly, MATTERMOST_MESSAGE_RUNES) == exactly
    over = EMOJI * (MATTERMOST_MESSAGE_RUNES + 1)
    cut = clip(over, MATTERMOST_MESSAGE_RUNES)
    assert len(cut) == MATTERMOST_MESSAGE_RUNES
    assert cut.endswith(TRUNCATION_MARK)
    assert cut.startswith(EMOJI * 100)


def test_clip_below_the_marks_length_just_cuts() -> None:
    assert clip("abcdefghijklmnopqrstuvwxyz", 3) == "abc"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("x" * 10 + " &amp; more text" * 3, "x" * 10 + " "),  # would end in "&a"
        ("x" * 10 + " <https://example.org|link> more", "x" * 10 + " "),  # would end inside the link
        ("x" * 10 + " plain words and more" * 3, "x" * 10 + " pl"),
    ],
)
def test_clip_mrkdwn_never_leaves_half_an_entity_or_link(text: str, kept: str) -> None:
    cut = clip_mrkdwn(text, 13 + len(TRUNCATION_MARK))
    assert cut == kept + TRUNCATION_MARK


def test_clip_mrkdwn_keeps_a_complete_link() -> None:
    text = "see <https://example.org|link> " + "y" * 50
    cut = clip_mrkdwn(text, 60)
    assert cut == "see <https://example.org|link> " + "y" * (60 - 31 - len(TRUNCATION_MARK)) + TRUNCATION_MARK


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_fit_slack_blocks_cuts_every_documented_limit() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "H" * 200}},
        section("s" * 5000),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2500} for _ in range(12)]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"} for _ in range(12)]},
        {"type": "actions", "elements": [{"type": "button", "value": "v" * 1900} for _ in range(30)]},
        {"type": "divider"},
    ]
    original = copy.deepcopy(blocks)
    fitted = fit_slack_blocks(blocks)
    assert blocks == original  # the caller's blocks are left alone
    assert len(fitted[0]["text"]["text"]) == 150 and fitted[0]["text"]["text"].endswith(TRUNCATION_MARK)
    assert len(fitted[1]["text"]["text"]) == 3000
    assert len(fitted[2]["fields"]) == 10
    assert all(len(f["text"]) == 2000 for f in fitted[2]["fields"])
    assert len(fitted[3]["elements"]) == 10
    assert len(fitted[4]["elements"]) == 25
    assert all(e["value"] == "v" * 1900 for e in fitted[4]["elements"])  # button values never cut
    assert fitted[5] == {"type": "divider"}


def test_fit_slack_blocks_keeps_fifty_and_says_how_many_were_left_out() -> None:
    fitted = fit_slack_blocks([section(str(i)) for i in range(60)])
    assert len(fitted) == SLACK_BLOCKS
    assert fitted[48] == section("48")
    assert fitted[49] == {"type": "context", "elements": [{"type": "mrkdwn", "text": "… 11 more blocks left out"}]}
    assert fit_slack_blocks([section("a")] * 50) == [section("a")] * 50


def test_fit_slack_attachments_keeps_a_hundred() -> None:
    assert len(fit_slack_attachments([{"color": "good"}] * 120)) == 100


ACK_URL = "https://alertq.example.org/mattermost/actions"


SIGNED = "v1.token.sig"


def attachment_props(text: str) -> dict[str, Any]:
    return {
        "attachments": [
            {
                "color": "#FF0000",
                "text": text,
                "fields": [{"title": "Output", "value": text, "short": False}],
                "actions": [
                    {
                        "id": "ack",
                        "name": "Acknowledge",
                        "integration": {"url": ACK_URL, "context": {"token": SIGNED}},
                    }
                ],
            }
        ]
    }


def test_small_props_are_sent_as_they_are() -> None:
    props = attachment_props("disk full")
    assert fit_mattermost_props(props) is props


def test_props_over_the_rune_limit_are_cut_to_fit_keeping_the_button() -> None:
    props = attachment_props("o" * 600_000)
    fitted = fit_mattermost_props(props)
    runes, size = mattermost_props_size(fitted)
    assert runes <= 800_000 and size <= 1024 * 1024
    attachment = fitted["attachments"][0]
    assert attachment["text"].endswith(TRUNCATION_MARK)
    assert len(attachment["text"]) > 300_000  # cut only as far as needed
    assert attachment["actions"][0]["integration"] == props["attachments"][0]["actions"][0]["integration"]
    assert attachment["color"] == "#FF0000"


def test_props_over_the_byte_limit_are_cut_too() -> None:
    # 400 000 runes, but 1.6 MB: within the rune limit, over the byte limit.
    fitted = fit_mattermost_props({"attachments": [{"text": EMOJI * 400_000}]})
    _, size = mattermost_props_size(fitted)
    assert size <= 1024 * 1024
    assert len(json.dumps(fitted, ensure_ascii=False, separators=(",", ":")).encode()) <= 1024 * 1024
    assert size > 1024 * 1024 - 100  # cut only as far as needed


def test_props_size_counts_what_go_escapes() -> None:
    runes, size = mattermost_props_size({"t": "<&>"})
    assert runes == len('{"t":"\\u003c\\u0026\\u003e"}')
    assert size == runes
