"""What a received payload looks like in the chat: one generic shape for every channel's format.

Mattermost attachments and Slack Block Kit both become cards (a colour bar around ordered parts:
header, text, fields, context, buttons); a webhook event and a mail become one card each. Texts stay
in their own markup (`markup`); the page turns them into HTML (markup.py). Unknown block types and
odd payloads are shown as best can be, never refused: the sink is there to show what was sent.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

Markup = Literal["markdown", "mrkdwn", "plain"]

# openITCOCKPIT's colours, so a webhook event looks like its chat message would.
HOST_COLOURS = {0: "#5cb85c", 1: "#d9534f", 2: "#adadad"}
SERVICE_COLOURS = {0: "#5cb85c", 1: "#f0ad4e", 2: "#d9534f", 3: "#adadad"}
HOST_STATES = {0: "UP", 1: "DOWN", 2: "UNREACHABLE"}
SERVICE_STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


class FieldItem(BaseModel):
    title: str = ""
    value: str = ""
    short: bool = False


class MenuOption(BaseModel):
    text: str
    value: str


class Button(BaseModel):
    key: str = Field(description="What the page posts to /api/messages/<id>/actions/<key>.")
    label: str
    style: str = "default"
    url: str | None = Field(None, description="A link button: opens the URL, posts nothing.")
    interactive: bool = Field(True, description="Clicking it calls the listener (Mattermost integration, Slack app).")
    options: list[MenuOption] = Field(
        default_factory=list,
        description="A menu (Mattermost `select`, Slack `static_select`): picking one posts "
        '{"selected_option": <its value>} to /api/messages/<id>/actions/<key>.',
    )
    # What a click sends comes from the action as it was posted; the API shows it in `payload` already.
    action: dict[str, Any] = Field(default_factory=dict, exclude=True)
    block_id: str | None = Field(None, exclude=True)


class Part(BaseModel):
    kind: Literal["header", "text", "fields", "context", "buttons", "divider", "image", "html", "code"]
    text: str = ""
    link: str | None = None
    fields: list[FieldItem] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)


class Card(BaseModel):
    colour: str | None = None
    bar: bool = Field(False, description="Drawn with a colour bar (attachments always are, grey by default).")
    pretext: str = ""
    parts: list[Part] = Field(default_factory=list)


class Rendered(BaseModel):
    title: str = ""
    text: str = ""
    colour: str | None = None
    buttons: list[Button] = Field(default_factory=list)
    markup: Markup = "plain"
    body: str = Field("", description="The message's own text, above its cards.")
    cards: list[Card] = Field(default_factory=list)
    meta: dict[str, str] = Field(default_factory=dict)


def render(channel: str, payload: dict[str, Any]) -> Rendered:
    if channel == "mattermost":
        rendered = _chat(payload, "markdown")
    elif channel == "slack":
        rendered = _chat(payload, "mrkdwn")
    elif channel == "email":
        rendered = _mail(payload)
    else:
        rendered = _webhook(payload)
    return _summarise(rendered)


def _chat(payload: dict[str, Any], markup: Markup) -> Rendered:
    keys = _ButtonKeys()
    cards: list[Card] = []
    blocks = payload.get("blocks")
    if isinstance(blocks, list) and blocks:
        cards.append(Card(parts=_blocks(blocks, keys)))
    for attachment in _dicts(payload.get("attachments")):
        cards.append(_attachment(attachment, keys))
    return Rendered(markup=markup, body=_str(payload.get("text")), cards=cards)


def _attachment(attachment: dict[str, Any], keys: _ButtonKeys) -> Card:
    """Slack's legacy attachment, which Mattermost uses for every rich message."""
    parts: list[Part] = []
    if attachment.get("author_name"):
        parts.append(Part(kind="context", items=[_str(attachment["author_name"])]))
    if attachment.get("title"):
        parts.append(Part(kind="header", text=_str(attachment["title"]), link=attachment.get("title_link")))
    if attachment.get("text"):
        parts.append(Part(kind="text", text=_str(attachment["text"])))
    fields = [
        FieldItem(title=_str(f.get("title")), value=_str(f.get("value")), short=bool(f.get("short")))
        for f in _dicts(attachment.get("fields"))
    ]
    if fields:
        parts.append(Part(kind="fields", fields=fields))
    if isinstance(attachment.get("blocks"), list):
        parts.extend(_blocks(attachment["blocks"], keys))
    buttons = [keys.button(a, _str(a.get("name") or a.get("text"))) for a in _dicts(attachment.get("actions"))]
    if buttons:
        parts.append(Part(kind="buttons", buttons=buttons))
    if attachment.get("footer"):
        parts.append(Part(kind="context", items=[_str(attachment["footer"])]))
    colour = _colour(attachment.get("color"))
    return Card(colour=colour, bar=True, pretext=_str(attachment.get("pretext")), parts=parts)


def _blocks(blocks: list[Any], keys: _ButtonKeys) -> list[Part]:
    parts: list[Part] = []
    for block in _dicts(blocks):
        kind = block.get("type")
        if kind == "header":
            parts.append(Part(kind="header", text=_text(block.get("text"))))
        elif kind == "section":
            if block.get("text"):
                parts.append(Part(kind="text", text=_text(block["text"])))
            fields = [FieldItem(value=_text(f), short=True) for f in _dicts(block.get("fields"))]
            if fields:
                parts.append(Part(kind="fields", fields=fields))
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                button = keys.button(accessory, _text(accessory.get("text")), block.get("block_id"))
                parts.append(Part(kind="buttons", buttons=[button]))
        elif kind == "context":
            items = [
                _text(e) if e.get("type") != "image" else _str(e.get("alt_text")) for e in _dicts(block.get("elements"))
            ]
            parts.append(Part(kind="context", items=items))
        elif kind == "actions":
            buttons = [
                keys.button(e, _text(e.get("text") or e.get("placeholder")), block.get("block_id"))
                for e in _dicts(block.get("elements"))
                if e.get("type") in ("button", "static_select")
            ]
            parts.append(Part(kind="buttons", buttons=buttons))
        elif kind == "divider":
            parts.append(Part(kind="divider"))
        elif kind == "image":
            parts.append(Part(kind="image", text=_str(block.get("alt_text")), link=block.get("image_url")))
        elif kind == "rich_text":
            parts.append(Part(kind="text", text=_rich_text(block)))
        else:
            parts.append(Part(kind="code", text=f"[{kind} block] " + json.dumps(block, ensure_ascii=False)))
    return parts


def _mail(payload: dict[str, Any]) -> Rendered:
    parts = [Part(kind="header", text=_str(payload.get("subject")) or "(no subject)")]
    if payload.get("text"):
        parts.append(Part(kind="code", text=_str(payload["text"])))
    if payload.get("html"):
        parts.append(Part(kind="html", text=_str(payload["html"])))
    meta = {"From": _str(payload.get("from")), "To": ", ".join(payload.get("to") or [])}
    return Rendered(markup="plain", cards=[Card(parts=parts)], meta=meta)


def _webhook(payload: dict[str, Any]) -> Rendered:
    body = json.dumps(payload, indent=2, ensure_ascii=False)
    if str(payload.get("schema", "")).startswith("alertq.alert/"):
        host: dict[str, Any] = payload["host"] if isinstance(payload.get("host"), dict) else {}
        service: dict[str, Any] | None = payload["service"] if isinstance(payload.get("service"), dict) else None
        state = payload["state"] if isinstance(payload.get("state"), int) else -1
        names = SERVICE_STATES if service else HOST_STATES
        colours = SERVICE_COLOURS if service else HOST_COLOURS
        subject = _str(host.get("display_name") or host.get("name"))
        if service:
            subject += " / " + _str(service.get("display_name") or service.get("name"))
        known = state in names
        state_name = names[state] if known else _str(payload.get("state"))
        title = f"{_str(payload.get('notification_type'))}: {subject} is {state_name}"
        colour = colours[state] if known and payload.get("notification_type") in ("PROBLEM", "RECOVERY") else "#1895f5"
        parts = [Part(kind="header", text=title), Part(kind="text", text=_str(payload.get("output")))]
        parts.append(Part(kind="code", text=body))
        return Rendered(markup="plain", cards=[Card(colour=colour, bar=True, parts=parts)])
    return Rendered(markup="plain", title="webhook", cards=[Card(parts=[Part(kind="code", text=body)])])


def _summarise(rendered: Rendered) -> Rendered:
    """The API's short view: a title, the plain texts, the first colour, every button."""
    headers = [p.text for c in rendered.cards for p in c.parts if p.kind == "header" and p.text]
    texts = [rendered.body] if rendered.body else []
    texts += [c.pretext for c in rendered.cards if c.pretext]
    texts += [p.text for c in rendered.cards for p in c.parts if p.kind in ("text", "code") and p.text]
    texts += [
        f"{f.title}: {f.value}" if f.title else f.value for c in rendered.cards for p in c.parts for f in p.fields
    ]
    first_line = next((line for t in texts for line in t.splitlines() if line.strip()), "")
    rendered.title = rendered.title or (headers[0] if headers else first_line)
    rendered.text = "\n".join(texts)
    rendered.colour = next((c.colour for c in rendered.cards if c.colour), None)
    rendered.buttons = [b for c in rendered.cards for p in c.parts for b in p.buttons]
    return rendered


class _ButtonKeys:
    """Gives each button the key a click names it by: its action id, made unique within the message."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def button(self, action: dict[str, Any], label: str, block_id: Any = None) -> Button:
        key = _str(action.get("id") or action.get("action_id")) or str(len(self.seen))
        while key in self.seen:
            key += "_"
        self.seen.add(key)
        url = action.get("url") if isinstance(action.get("url"), str) else None
        interactive = url is None and (isinstance(action.get("integration"), dict) or "action_id" in action)
        return Button(
            key=key,
            label=label or key,
            style=_str(action.get("style")) or "default",
            url=url,
            interactive=interactive,
            options=_menu_options(action),
            action=action,
            block_id=block_id if isinstance(block_id, str) else None,
        )


def _menu_options(action: dict[str, Any]) -> list[MenuOption]:
    """A Mattermost `select` ({text, value}) or a Slack `static_select` ({text: {text}, value})."""
    if action.get("type") not in ("select", "static_select"):
        return []
    return [MenuOption(text=_text(o.get("text")), value=_str(o.get("value"))) for o in _dicts(action.get("options"))]


def _rich_text(block: dict[str, Any]) -> str:
    out: list[str] = []
    for element in _dicts(block.get("elements")):
        for item in _dicts(element.get("elements")):
            out.append(_str(item.get("text") or item.get("url") or item.get("name")))
    return "".join(out)


def _text(obj: Any) -> str:
    """A Block Kit text object ({type, text}) or a bare string."""
    if isinstance(obj, dict):
        return _str(obj.get("text"))
    return _str(obj)


def _colour(value: Any) -> str | None:
    named = {"good": "#2eb886", "warning": "#daa038", "danger": "#a30200"}
    if not isinstance(value, str) or not value:
        return None
    if value in named:
        return named[value]
    # Only a hex colour reaches the page's style attribute.
    colour = value if value.startswith("#") else f"#{value}"
    return colour if re.fullmatch(r"#[0-9a-fA-F]{3,8}", colour) else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
