"""Alert storms by e-mail (issue 14): a real `alertq worker email`, the real broker and a real SMTP
server. What a recipient sees: one mail listing its notifications instead of one mail each, every
notification in exactly one mail; a recipient with one notification gets its ordinary mail."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

from tests.support.smtp import Inbox, smtp_server
from tests.support.workers import WorkerProcess, event, publish

NAME = re.compile(r"svc-(\d{4})-end")


def mails(inbox: Inbox) -> list[tuple[list[str], EmailMessage]]:
    found = []
    for envelope in list(inbox.received):
        raw = envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append((list(envelope.rcpt_tos), message))
    return found


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_storm_for_one_recipient_is_one_mail_listing_it(
    alertq_env: dict[str, str], amqp_url: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    count = 40
    alice = {"name": "alice", "email": "alice@example.org", "pager": None}
    storm = [
        event(
            "email",
            host={"id": f"h{n}", "name": f"h{n}", "display_name": f"host{n % 4}", "address": None},
            service={"id": f"s{n}", "name": f"s{n}", "display_name": f"svc-{n:04d}-end"},
            contact=alice,
        )
        for n in range(count)
    ]
    lone = event("email", contact={"name": "bob", "email": "bob@example.org", "pager": None})
    inbox = Inbox()
    with smtp_server(inbox) as port:
        start_worker(
            {
                **alertq_env,
                "ALERTQ_CHANNELS__EMAIL__HOST": "127.0.0.1",
                "ALERTQ_CHANNELS__EMAIL__PORT": str(port),
                "ALERTQ_CHANNELS__EMAIL__RATE_LIMIT__PER_SECOND": "1",
                "ALERTQ_CHANNELS__EMAIL__RATE_LIMIT__BURST": "2",
                "ALERTQ_WORKER__CONNECT_RETRY_WAIT": "0.1",
            },
            channel="email",
        )
        publish(amqp_url, [*storm, lone], channel="email")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            to_alice = [m for to, m in mails(inbox) if to == ["alice@example.org"]]
            if sum(len(set(NAME.findall(body_of(m)))) for m in to_alice) >= count and any(
                to == ["bob@example.org"] for to, _ in mails(inbox)
            ):
                break
            time.sleep(0.2)
        time.sleep(2)  # a mail twice would come now
        received = mails(inbox)
    to_alice = [m for to, m in received if to == ["alice@example.org"]]
    seen = Counter(int(n) for m in to_alice for n in set(NAME.findall(body_of(m))))
    print(f"\ne-mail storm: {count} notifications for one recipient in {len(to_alice)} mails")
    assert sorted(seen) == list(range(count)) and set(seen.values()) == {1}
    assert len(to_alice) <= 6
    assert any("problems on" in str(m["Subject"]) for m in to_alice)
    [(_, to_bob)] = [(to, m) for to, m in received if to == ["bob@example.org"]]
    assert "Service Alert" in str(to_bob["Subject"])  # its ordinary mail
