"""What a digest shows: a headline with counts and one compact line per problem, split into parts (posts)
that fit the chat's size limits.

"37 problems on 12 hosts: 30 CRITICAL, 7 WARNING", then per line the state's emoji, host, service,
state and the first line of the plugin output. Names and output are cut, and the parts are fixed when
the digest is made, from the lines' lengths with room for the marks added later: Slack gets a header
and sections of at most 3,000 characters (≤ 50 blocks), Mattermost one message well under its
16,383-rune `MaxPostSize`. Once its incident is acknowledged or recovers, a line is marked (struck
through, "recovered after 3 min", "acknowledged by …") and the headline counts what is still open.

Two-way chats in API mode add "Acknowledge all N" and a menu with one option per open line, each a
signed digest token (schemas/ack_token.py): Slack in an actions block, Mattermost in one attachment
(`props.attachments`, beside the message's own size limit) whose button carries the token in its
integration's context and whose message menu has the tokens as its options' values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from schemas.ack_token import DigestClaims, make_digest_token, members_hash
from schemas.alert import AlertEvent
from schemas.channels import AckSettings, MattermostSettings, SlackSettings
from schemas.incident import incident_of
from workers.channels import mattermost, slack
from workers.conversations.render import MARKUP, Markup, SlackRoot, duration
from workers.conversations.store import ConversationStore, DigestItem, MemberState, State
from workers.render import clip, render

NAME_LIMIT = 48
OUTPUT_LIMIT = 80
# Slack: a section holds 3,000 characters; 48 sections under the header stay within 50 blocks.
SLACK_SECTION = 3000
SLACK_SECTIONS = 47  # + header, context and the Acknowledge actions: 50 blocks
# Mattermost: 16,383 runes is today's MaxPostSize; keep room for the headline and escapes.
MATTERMOST_MESSAGE = 15000
MARK_ROOM = 80  # "~~ ~~ · recovered after 2 h 5 min" / "acknowledged by …" added to a line later


@dataclass(frozen=True)
class Line:
    event: AlertEvent
    state: State
    ack_author: str | None
    recovery: AlertEvent | None

    @property
    def settled(self) -> bool:
        """Recovered or acknowledged: struck through, out of the open counts and the buttons."""
        return self.recovery is not None or bool(self.ack_author)


@dataclass(frozen=True)
class AckButtons:
    """Signed digest tokens (schemas/ack_token.py): one for every open line of the part, and one per
    line (None: the line is closed), aligned with the part's lines."""

    every: str
    lines: tuple[str | None, ...]


@dataclass(frozen=True)
class PartView:
    lines: tuple[Line, ...]
    part: int  # 0-based
    parts: int
    ack: AckButtons | None = None


def view_of(states: list[MemberState], part: int, parts: int) -> PartView:
    lines = tuple(
        Line(
            AlertEvent.model_validate_json(state.event_json),
            state.state,
            state.ack_author,
            AlertEvent.model_validate_json(state.recovery_event) if state.recovery_event else None,
        )
        for state in states
    )
    return PartView(lines, part, parts)


def part_view(store: ConversationStore, digest_id: int, part: int) -> PartView:
    """A posted digest part as the store has its lines now."""
    return view_of(store.part_lines(digest_id, part), part, store.part_count(digest_id))


def buttons(
    ack: AckSettings | None, digest_id: int, part: int, items: list[DigestItem], open_: list[bool], now: float
) -> AckButtons | None:
    """Two-way chats (`ack`: the chat's signing settings, else None): the part's signed tokens, bound to
    its lines (schemas/ack_token.py); None when no line is open."""
    if ack is None or ack.signing_secret is None or not any(open_):
        return None
    key = ack.signing_secret.get_secret_value()
    members = members_hash([(item.incident, item.event_ids[0]) for item in items])
    expires = int(now) + ack.token_ttl
    every = make_digest_token(key, DigestClaims(digest_id, part, members, expires))
    lines = tuple(
        make_digest_token(key, DigestClaims(digest_id, part, members, expires, item.position)) if is_open else None
        for item, is_open in zip(items, open_, strict=True)
    )
    return AckButtons(every, lines)


def signed_part_view(
    store: ConversationStore, digest_id: int, part: int, ack: AckSettings | None, now: float
) -> PartView:
    """A posted part as the store has it now, with the buttons of the lines still open: every edit of a
    part (a follow-up folded by storms.py, or one delivered on its own through its conversation) shows
    them, so an acknowledged or recovered line leaves the menu and the "Acknowledge all" count."""
    view = part_view(store, digest_id, part)
    items = [item for item in store.digest_items(digest_id) if item.part == part]
    still_open = {incident_of(line.event).key for line in view.lines if not line.settled}
    made = buttons(ack, digest_id, part, items, [item.incident in still_open for item in items], now)
    if made is None:
        return view
    # The part's lines in the store's order: align the tokens with them.
    by_incident = dict(zip((item.incident for item in items), made.lines, strict=True))
    shown = tuple(by_incident.get(incident_of(line.event).key) for line in view.lines)
    return PartView(view.lines, view.part, view.parts, AckButtons(made.every, shown))


def parts_for(lengths: list[int], max_items: int, chat: str) -> list[int]:
    """The part of each line in order (`lengths`: each line's rendered length): as few parts as
    `max_items` and the chat's size limit allow, evenly filled. Each line is allowed `MARK_ROOM` more
    characters, for when it is marked acknowledged or recovered."""
    if not lengths:
        return []
    budget = MATTERMOST_MESSAGE if chat == "mattermost" else SLACK_SECTION * SLACK_SECTIONS * 9 // 10
    parts = max(-(-len(lengths) // max_items), -(-(sum(lengths) + MARK_ROOM * len(lengths)) // budget))
    while True:
        size = -(-len(lengths) // parts)
        chunks = [lengths[start : start + size] for start in range(0, len(lengths), size)]
        if all(sum(chunk) + MARK_ROOM * len(chunk) <= budget for chunk in chunks):
            return [position // size for position in range(len(lengths))]
        parts += 1


def line_length(chat: str, event: AlertEvent) -> int:
    line = Line(event, State.OPEN, None, None)
    return len(slack_line(line) if chat == "slack" else mattermost_line(line)) + 1


KIND_WORDS = {"RECOVERY": "recovered", "ACKNOWLEDGEMENT": "acknowledged"}


def headline(view: PartView) -> str:
    """ "37 problems on 12 hosts: 30 CRITICAL, 7 WARNING" (+ "3 recovered, 2 acknowledged"), part n/m.
    Webhook mode lists notifications of any kind: "500 recoveries on 50 hosts: 500 recovered"."""
    count = len(view.lines)
    hosts = len({line.event.host.display_name or line.event.host.name for line in view.lines})
    kinds = Counter(line.event.notification_type for line in view.lines)
    problems = [line for line in view.lines if line.event.notification_type == "PROBLEM"]
    open_states = Counter(render(line.event).state for line in problems if not line.settled)
    others = Counter(KIND_WORDS.get(kind, kind.lower()) for kind in kinds.elements() if kind != "PROBLEM")
    recovered = sum(1 for line in problems if line.recovery is not None) + others.pop("recovered", 0)
    acknowledged = sum(1 for line in problems if line.recovery is None and line.ack_author)
    acknowledged += others.pop("acknowledged", 0)
    if set(kinds) == {"RECOVERY"}:
        noun = "recovery" if count == 1 else "recoveries"
    elif set(kinds) <= {"PROBLEM"}:
        noun = "problem" if count == 1 else "problems"
    else:
        noun = "notification" if count == 1 else "notifications"
    host_noun = "host" if hosts == 1 else "hosts"
    counts = [f"{n} {state}" for state, n in sorted(open_states.items(), key=lambda item: (-item[1], item[0]))]
    if acknowledged:
        counts.append(f"{acknowledged} acknowledged")
    if recovered:
        counts.append(f"{recovered} recovered")
    counts += [f"{n} {word}" for word, n in sorted(others.items())]
    text = f"{count} {noun} on {hosts} {host_noun}: " + ", ".join(counts)
    if view.parts > 1:
        text += f" (part {view.part + 1} of {view.parts})"
    return text


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _line_parts(line: Line) -> tuple[str, str, str, str, str]:
    notice = render(line.event)
    host = clip(line.event.host.display_name or line.event.host.name, NAME_LIMIT)
    service = ""
    if line.event.service is not None:
        service = clip(line.event.service.display_name or line.event.service.name, NAME_LIMIT)
    output = clip(_first_line(notice.output), OUTPUT_LIMIT)
    mark = ""
    if line.recovery is not None:
        after = duration((line.recovery.created_at - line.event.created_at).total_seconds())
        mark = f"recovered after {after}"
    elif line.ack_author:
        mark = f"acknowledged by {clip(line.ack_author, NAME_LIMIT)}"
    emoji = render(line.recovery).emoji if line.recovery is not None else notice.emoji
    return emoji, host, service, notice.state, output + (" · " + mark if mark else "")


def slack_line(line: Line) -> str:
    return _chat_line(line, MARKUP["slack"], bullet="")


def mattermost_line(line: Line) -> str:
    return _chat_line(line, MARKUP["mattermost"], bullet="- ")


def _chat_line(line: Line, markup: Markup, *, bullet: str) -> str:
    """One digest line in a chat's markup; struck through once recovered or acknowledged."""
    escape, bold, strike = markup.escape, markup.bold, markup.strike
    emoji, host, service, state, rest = _line_parts(line)
    name = f"{bold}{escape(host)}{bold}" + (f" / {escape(service)}" if service else "")
    body = f"{name} {bold}{escape(state)}{bold} {escape(rest)}"
    if line.settled:
        body = f"{strike}{name} {escape(state)}{strike} {escape(rest)}"
    return f"{bullet}{emoji} {body}"


API_CONTEXT = "alertq digest: a storm folded into one post; follow-ups go into this thread"
WEBHOOK_CONTEXT = "alertq digest: a storm folded into one post"


def slack_digest(view: PartView, settings: SlackSettings, context: str = API_CONTEXT) -> SlackRoot:
    title = headline(view)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(f":rotating_light: {title}", slack.HEADER_LIMIT)},
        }
    ]
    section: list[str] = []
    size = 0
    for text in (slack_line(line) for line in view.lines):
        if section and size + len(text) + 1 > SLACK_SECTION:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(section)}})
            section, size = [], 0
        section.append(text)
        size += len(text) + 1
    if section:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(section)}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    actions = slack_ack_actions(view)
    if actions is not None:
        blocks.append(actions)
    return SlackRoot(slack.escape(title), blocks, [])


SLACK_DIGEST_ACTION_ID = "alertq_ack_digest"  # ack_listener/clicks.py
SLACK_ITEM_ACTION_ID = "alertq_ack_item"
SLACK_OPTIONS = 100  # a static_select's most options
SLACK_OPTION_TEXT = 75


def slack_ack_actions(view: PartView) -> dict[str, Any] | None:
    """ "Acknowledge all N" and a menu of the open lines, each its own signed token."""
    if view.ack is None:
        return None
    open_lines = [(line, token) for line, token in zip(view.lines, view.ack.lines, strict=True) if token]
    if not open_lines:
        return None
    elements: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": SLACK_DIGEST_ACTION_ID,
            "text": {"type": "plain_text", "text": f"Acknowledge all {len(open_lines)}"},
            "value": view.ack.every,
            "confirm": {
                "title": {"type": "plain_text", "text": "Acknowledge all?"},
                "text": {"type": "plain_text", "text": f"{len(open_lines)} problems are acknowledged in the core."},
                "confirm": {"type": "plain_text", "text": "Acknowledge"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            },
        }
    ]
    elements.append(
        {
            "type": "static_select",
            "action_id": SLACK_ITEM_ACTION_ID,
            "placeholder": {"type": "plain_text", "text": "Ack one problem…"},
            "options": [
                {
                    "text": {"type": "plain_text", "text": clip(render(line.event).label, SLACK_OPTION_TEXT)},
                    "value": token,
                }
                for line, token in open_lines[:SLACK_OPTIONS]
            ],
        }
    )
    return {"type": "actions", "block_id": "alertq_digest_ack", "elements": elements}


def mattermost_digest(view: PartView, settings: MattermostSettings) -> str:
    title = headline(view)
    lines = [f"#### :rotating_light: {mattermost.escape(title)}", *(mattermost_line(line) for line in view.lines)]
    return "\n".join(lines)


# Mattermost routes a click only on an action id of [A-Za-z0-9]+; the listener tells the menu by its
# context's "action" (ack_listener/clicks.py), the server adding the chosen option as "selected_option".
MATTERMOST_DIGEST_ACTION = "ackall"
MATTERMOST_ITEM_ACTION = "ackitem"
MATTERMOST_OPTIONS = 100  # as Slack's menu: a readable list, and the props stay far below 800,000 runes
MATTERMOST_OPTION_TEXT = 75


def mattermost_ack_attachments(view: PartView, settings: MattermostSettings) -> list[dict[str, Any]]:
    """The part's `props.attachments`: one attachment under the message with "Acknowledge all N" (the
    part's token in the integration's context, as a single post's Acknowledge carries its own:
    workers/channels/mattermost.py) and a message menu of the open lines, each option's value the line's
    token. None of them (an empty list) once no line is open or the channel is not two-way."""
    if view.ack is None or not settings.ack_url:
        return []
    open_lines = [(line, token) for line, token in zip(view.lines, view.ack.lines, strict=True) if token]
    if not open_lines:
        return []
    label = f"Acknowledge all {len(open_lines)}"
    actions: list[dict[str, Any]] = [
        {
            "id": MATTERMOST_DIGEST_ACTION,
            "type": "button",
            "name": label,
            "style": "danger",
            "integration": {
                "url": settings.ack_url,
                "context": {"action": MATTERMOST_DIGEST_ACTION, "token": view.ack.every},
            },
        },
        {
            "id": MATTERMOST_ITEM_ACTION,
            "type": "select",
            "name": "Ack one problem…",
            # Option values are visible to the channel's members, as a Slack option's value is: each is
            # a signed token that acknowledges its own line only.
            "options": [
                {"text": clip(render(line.event).label, MATTERMOST_OPTION_TEXT), "value": token}
                for line, token in open_lines[:MATTERMOST_OPTIONS]
            ],
            "integration": {"url": settings.ack_url, "context": {"action": MATTERMOST_ITEM_ACTION}},
        },
    ]
    return [{"fallback": mattermost.no_mentions(label), "text": "", "actions": actions}]


def storm_reply(chat: str, events: list[AlertEvent], view: PartView) -> str | None:
    """The thread reply for a batch of follow-ups of one digest part (`view`: the part as edited), or
    None: acknowledgements are listed (people acted); recoveries only once the part has nothing open
    left, as one closing line; before that the edited lines show them."""
    acknowledged = [event for event in events if event.notification_type != "RECOVERY"]
    done = all(line.settled for line in view.lines)
    out = []
    if acknowledged:
        out.append(follow_up_text(chat, acknowledged))
    if done:
        out.append("All closed: " + MARKUP[chat].escape(headline(view)))
    return "\n".join(out) if out else None


def follow_up_text(chat: str, events: list[AlertEvent]) -> str:
    """One thread reply for the follow-ups of several lines: "3 recovered: web01 / Disk, …"."""
    by_kind: dict[str, list[str]] = {}
    for event in events:
        notice = render(event)
        label = clip(notice.label, 2 * NAME_LIMIT)
        by_kind.setdefault(event.notification_type, []).append(label)
    escape = MARKUP[chat].escape
    out = []
    for kind, labels in by_kind.items():
        out.append(
            f"{len(labels)} {KIND_WORDS.get(kind, kind.lower())}: " + ", ".join(escape(label) for label in labels)
        )
    return clip("\n".join(out), 3900)
