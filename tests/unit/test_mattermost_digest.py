"""A Mattermost digest's Acknowledge buttons (workers/conversations/digest.py, chats.py): in API mode with
two-way on, a part carries "Acknowledge all N" and a message menu of its open lines, each with its own
signed token; edits after acknowledgements keep them aligned with the lines still open; the props stay
within Mattermost's limits; the listener reads a menu choice's token (ack_listener/clicks.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ack_listener import clicks
from delivery.chat.limits import MATTERMOST_PROPS_RUNES, fit_mattermost_props, mattermost_props_size
from delivery.chat.mattermost_api import MattermostPost
from schemas.ack_token import DigestClaims, make_digest_token, verify_digest_token
from schemas.channels import AckSettings, ConversationSettings, FoldSettings, MattermostSettings
from tests.unit.test_conversation_flow import Clock
from tests.unit.test_storms import follow_up, problem
from workers.conversations import digest
from workers.conversations.chats import MattermostChat
from workers.conversations.flow import Conversations
from workers.conversations.store import State
from workers.conversations.storms import Storms

SECRET = "digest-signing-secret-0123456789abcdef"
ACK_URL = "http://listener.example:8089/mattermost/actions"


@dataclass
class FakeBudget:
    def capacity(self, now: float, within: float) -> int:
        return 1  # one post at a time: any storm folds


@dataclass
class FakeApi:
    """The calls MattermostChat makes, recorded as the server would get them."""

    budget: FakeBudget = field(default_factory=FakeBudget)
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def resolve(self, destination: str) -> str:
        return "chan1"

    def create_post(self, channel_id: str, message: str, **given: Any) -> MattermostPost:
        post_id = f"post{len(self.posts) + 1}"
        props = {"attachments": given["attachments"]} if given.get("attachments") is not None else {}
        self.posts[post_id] = {"message": message, "props": props, "root_id": given.get("root_id")}
        return MattermostPost(
            id=post_id, channel_id=channel_id, root_id=given.get("root_id") or "", message=message, props=props
        )

    def patch_post(self, post_id: str, **given: Any) -> MattermostPost:
        self.patches.append((post_id, given))
        post = self.posts[post_id]
        if given.get("message") is not None:
            post["message"] = given["message"]
        if given.get("attachments") is not None:  # a props value replaces the whole map
            post["props"] = {"attachments": given["attachments"]}
        return MattermostPost(id=post_id, channel_id="chan1", root_id="", message=post["message"], props=post["props"])

    def close(self) -> None:
        pass


def settings(two_way: bool = True, secret: str = SECRET) -> MattermostSettings:
    config = MattermostSettings(
        api_url="https://mm.example.org",
        bot_token="bot-token-0123456789",
        channel="ops/alerts",
        two_way=two_way,
        ack_url=ACK_URL if two_way else None,
    )
    config.with_ack(AckSettings(signing_secret=secret))
    return config


@pytest.fixture
def clock() -> Clock:
    return Clock()


def storms_on(
    api: FakeApi, clock: Callable[[], float], store: str, two_way: bool = True, secret: str = SECRET
) -> Storms:
    """Storms on MattermostChat over `api`, keeping its digests in `store` (a conversations store URL)."""
    chat = MattermostChat(settings(two_way, secret), api=api)  # type: ignore[arg-type]
    conversation = ConversationSettings(store=store, wait_for_root=30, claim_lease=30)
    flow = Conversations(chat, conversation, window=120, clock=clock)
    return Storms(flow, FoldSettings(max_items=100), clock=clock)


def actions_of(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    attachments = post["props"].get("attachments") or []
    return {action["id"]: action for attachment in attachments for action in attachment.get("actions", [])}


def test_a_two_way_digest_part_carries_acknowledge_all_and_a_menu_of_its_lines(clock: Clock, tmp_path: Path) -> None:
    api = FakeApi()
    problems = [problem(n) for n in range(12)]
    storms_on(api, clock, f"sqlite:///{tmp_path}/c.db").fold(problems)
    [post] = api.posts.values()
    assert post["message"].startswith("#### :rotating_light: 12 problems on 12 hosts")
    actions = actions_of(post)
    assert set(actions) == {"ackall", "ackitem"}  # Mattermost routes only [A-Za-z0-9]+ ids
    every = actions["ackall"]
    assert every["name"] == "Acknowledge all 12" and every["integration"]["url"] == ACK_URL
    claims = verify_digest_token(SECRET, every["integration"]["context"]["token"], now=clock())
    assert claims.position is None
    menu = actions["ackitem"]
    assert menu["type"] == "select" and menu["integration"] == {"url": ACK_URL, "context": {"action": "ackitem"}}
    # One option per line, in the message's order, each value the token of that line alone.
    assert [o["text"] for o in menu["options"]] == [f"web{n:02d} / Disk /" for n in range(12)]
    positions = [verify_digest_token(SECRET, o["value"], now=clock()).position for o in menu["options"]]
    assert positions == list(range(12))
    assert {verify_digest_token(SECRET, o["value"], now=clock()).members for o in menu["options"]} == {claims.members}


def test_edits_keep_the_buttons_on_the_lines_still_open_and_drop_them_once_none_is(
    clock: Clock, tmp_path: Path
) -> None:
    api = FakeApi()
    storms = storms_on(api, clock, f"sqlite:///{tmp_path}/c.db")
    problems = [problem(n) for n in range(12)]
    storms.fold(problems)
    clock.now += 300
    # One acknowledgement on its own goes through its conversation: the part's edit keeps the buttons.
    storms.conversations.deliver(follow_up(problems[0], "ACKNOWLEDGEMENT"))
    actions = actions_of(api.posts["post1"])
    assert actions["ackall"]["name"] == "Acknowledge all 11"
    assert [o["text"] for o in actions["ackitem"]["options"]] == [f"web{n:02d} / Disk /" for n in range(1, 12)]
    storms.fold([follow_up(p, "ACKNOWLEDGEMENT") for p in problems[1:4]])
    storms.fold([follow_up(p, "RECOVERY", at=400) for p in problems[4:6]])
    post = api.posts["post1"]
    assert "12 problems on 12 hosts: 6 CRITICAL, 4 acknowledged, 2 recovered" in post["message"]
    actions = actions_of(post)
    assert actions["ackall"]["name"] == "Acknowledge all 6"
    assert [o["text"] for o in actions["ackitem"]["options"]] == [f"web{n:02d} / Disk /" for n in range(6, 12)]
    positions = [verify_digest_token(SECRET, o["value"], now=clock()).position for o in actions["ackitem"]["options"]]
    assert positions == list(range(6, 12))

    storms.fold([follow_up(p, "ACKNOWLEDGEMENT", at=500) for p in problems[6:]])
    _, last = api.patches[-1]
    assert last["attachments"] == [] and api.posts["post1"]["props"] == {"attachments": []}


def test_without_two_way_a_digest_has_no_buttons_and_its_edits_leave_the_props_alone(
    clock: Clock, tmp_path: Path
) -> None:
    api = FakeApi()
    storms = storms_on(api, clock, f"sqlite:///{tmp_path}/c.db", two_way=False)
    problems = [problem(n) for n in range(5)]
    storms.fold(problems)
    assert api.posts["post1"]["props"] == {}
    storms.fold([follow_up(p, "RECOVERY") for p in problems[:2]])
    assert [set(given) for _, given in api.patches] == [{"message"}]


def biggest_view(lines: int) -> digest.PartView:
    """A part with `lines` lines whose names are as long as a digest line shows them."""
    events = [
        problem(n).model_copy(
            update={
                "host": problem(n).host.model_copy(update={"display_name": f"h{n:03d}-" + "x" * 200}),
                "service": problem(n).service.model_copy(update={"display_name": "s" * 200}),  # type: ignore[union-attr]
            }
        )
        for n in range(lines)
    ]
    tokens = tuple(make_digest_token(SECRET, DigestClaims(99_999, 9, "f" * 16, 2_000_000_000, n)) for n in range(lines))
    every = make_digest_token(SECRET, DigestClaims(99_999, 9, "f" * 16, 2_000_000_000))
    return digest.PartView(
        tuple(digest.Line(e, State.OPEN, None, None) for e in events),
        9,
        10,
        digest.AckButtons(every, tokens),
    )


def test_the_menu_is_capped_and_the_props_stay_far_within_mattermosts_limits() -> None:
    view = biggest_view(250)
    [attachment] = digest.mattermost_ack_attachments(view, settings())
    every, menu = attachment["actions"]
    assert every["name"] == "Acknowledge all 250"  # the button acknowledges every open line
    assert len(menu["options"]) == digest.MATTERMOST_OPTIONS == 100
    assert all(len(o["text"]) <= digest.MATTERMOST_OPTION_TEXT for o in menu["options"])
    props = {"attachments": [attachment]}
    runes, size = mattermost_props_size(props)
    assert runes < MATTERMOST_PROPS_RUNES // 20 and size < 1024 * 1024 // 20, (runes, size)
    assert fit_mattermost_props(props) is props  # nothing is cut
    # Were the props ever cut to fit (here: a long text beside them), the menu's tokens stay whole.
    padded = {"attachments": [{**attachment, "text": "y" * 5000}]}
    tight = fit_mattermost_props(padded, max_runes=runes + 50, max_bytes=size + 50)
    assert len(tight["attachments"][0]["text"]) < 5000
    assert tight["attachments"][0]["actions"][1]["options"] == menu["options"]


def test_a_part_with_no_line_open_or_no_ack_url_has_no_attachment() -> None:
    view = biggest_view(3)
    closed = digest.PartView(view.lines, view.part, view.parts, digest.AckButtons(view.ack.every, (None,) * 3))  # type: ignore[union-attr]
    assert digest.mattermost_ack_attachments(closed, settings()) == []
    assert digest.mattermost_ack_attachments(digest.PartView(view.lines, 0, 1), settings()) == []


def mattermost_click(context: dict[str, Any]) -> bytes:
    body = {"user_name": "jdoe", "post_id": "post1", "channel_id": "chan1", "type": "select", "context": context}
    return json.dumps(body).encode()


def test_the_listener_reads_acknowledge_all_from_the_context_and_one_line_from_the_selected_option() -> None:
    view = biggest_view(3)
    [attachment] = digest.mattermost_ack_attachments(view, settings())
    every, menu = attachment["actions"]
    assert clicks.mattermost(mattermost_click(every["integration"]["context"])).token == view.ack.every  # type: ignore[union-attr]
    # Mattermost adds the chosen option's value to the menu's context.
    chosen = menu["options"][1]["value"]
    click = clicks.mattermost(mattermost_click({**menu["integration"]["context"], "selected_option": chosen}))
    assert click.token == chosen and click.reply.post_id == "post1" and click.chat_user == "jdoe"
    with pytest.raises(clicks.BadClick, match=r"context\.selected_option is missing"):
        clicks.mattermost(mattermost_click(menu["integration"]["context"]))
    assert digest.MATTERMOST_ITEM_ACTION == clicks.MATTERMOST_ITEM_ACTION
