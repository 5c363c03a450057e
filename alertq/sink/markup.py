"""Chat text to safe HTML, enough to look like the chat: bold, italics, strike, code, links, emoji.

Mattermost speaks Markdown (`**bold**`, `[text](url)`), Slack its mrkdwn (`*bold*`, `<url|text>`,
with `&`, `<`, `>` arriving escaped). Everything is HTML-escaped first; only the markup below
becomes tags, and only http(s)/mailto links become anchors.
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

# The emoji alert messages use; any other :shortcode: stays as it was written.
EMOJI = {
    "red_circle": "\U0001f534",
    "large_orange_circle": "\U0001f7e0",
    "orange_circle": "\U0001f7e0",
    "large_yellow_circle": "\U0001f7e1",
    "yellow_circle": "\U0001f7e1",
    "large_green_circle": "\U0001f7e2",
    "green_circle": "\U0001f7e2",
    "large_blue_circle": "\U0001f535",
    "blue_circle": "\U0001f535",
    "white_circle": "\u26aa",
    "black_circle": "\u26ab",
    "white_check_mark": "\u2705",
    "heavy_check_mark": "\u2714\ufe0f",
    "warning": "\u26a0\ufe0f",
    "x": "\u274c",
    "bell": "\U0001f514",
    "no_bell": "\U0001f515",
    "rotating_light": "\U0001f6a8",
    "fire": "\U0001f525",
    "wrench": "\U0001f527",
    "hammer_and_wrench": "\U0001f6e0\ufe0f",
    "zzz": "\U0001f4a4",
    "information_source": "\u2139\ufe0f",
    "question": "\u2753",
    "grey_question": "\u2754",
    "sos": "\U0001f198",
    "ok": "\U0001f197",
    "eyes": "\U0001f440",
    "thumbsup": "\U0001f44d",
    "+1": "\U0001f44d",
    "clock3": "\U0001f552",
    "alarm_clock": "\u23f0",
    "construction": "\U0001f6a7",
    "arrows_counterclockwise": "\U0001f504",
    "stopwatch": "\u23f1\ufe0f",
    "speech_balloon": "\U0001f4ac",
    "loudspeaker": "\U0001f4e2",
}

_SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
_CODE = re.compile(r"`([^`\n]+)`")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")


def to_html(text: str, markup: str) -> Markup:
    if markup == "markdown":
        safe = _markdown(text)
    elif markup == "mrkdwn":
        safe = _mrkdwn(text)
    else:
        safe = html.escape(text)
    # Safe: every character of the input went through html.escape; only this module's tags are added.
    return Markup(safe.replace("\n", "<br>"))  # noqa: S704


def _markdown(text: str) -> str:
    held = _Held()
    out = held.code(html.escape(text, quote=True))
    out = re.sub(r"\[([^\]\n]+)\]\(([^)\s]+)\)", lambda m: held.keep(_link(html.unescape(m[2]), m[1])), out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"__(.+?)__", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)
    out = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"<em>\1</em>", out)
    out = re.sub(r"~~(.+?)~~", r"<del>\1</del>", out)
    out = re.sub(r"^#{1,6}\s+(.+)$", r"<strong>\1</strong>", out, flags=re.MULTILINE)
    return held.restore(_emoji(out))


def _mrkdwn(text: str) -> str:
    # Slack escapes &, < and > itself; what is left between < and > is a link or a mention.
    held = _Held()
    pieces: list[str] = []
    for i, piece in enumerate(re.split(r"<([^<>]*)>", text)):
        if i % 2:
            pieces.append(held.keep(_slack_token(piece)))
        else:
            pieces.append(html.escape(html.unescape(piece), quote=True))
    out = held.code("".join(pieces))
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"<em>\1</em>", out)
    out = re.sub(r"(?<![\w~])~(?!\s)(.+?)(?<!\s)~(?![\w~])", r"<del>\1</del>", out)
    return held.restore(_emoji(out))


def _slack_token(token: str) -> str:
    target, _, label = token.partition("|")
    target = html.unescape(target)
    if target.startswith(("!", "@", "#")):
        name = label or target.lstrip("!@#").split("^")[0]
        return f'<span class="mention">@{html.escape(html.unescape(name))}</span>'
    return _link(target, html.escape(html.unescape(label or target)))


def _link(url: str, label_html: str) -> str:
    if not _SAFE_URL.match(url):
        return label_html
    return f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{label_html}</a>'


class _Held:
    """Finished HTML (links, code) set aside while the text's markup is applied, so `*`, `_` and
    `~` in URLs and code stay literal."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def keep(self, fragment: str) -> str:
        self.pieces.append(fragment)
        return f"\x00{len(self.pieces) - 1}\x00"

    def code(self, text: str) -> str:
        return _CODE.sub(lambda m: self.keep(f"<code>{m[1]}</code>"), text)

    def restore(self, text: str) -> str:
        return re.sub(r"\x00(\d+)\x00", lambda m: self.pieces[int(m[1])], text)


def _emoji(text: str) -> str:
    return _EMOJI.sub(lambda m: EMOJI.get(m[1], m[0]), text)
