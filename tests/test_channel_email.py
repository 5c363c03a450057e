"""E-mail channel: the mail (golden files) as a real SMTP server receives it, and SMTP's answers."""

from __future__ import annotations

import email
import email.policy
import email.utils
import logging
import socket
from email.message import EmailMessage
from typing import Any

import pytest

from delivery.outcomes import Permanent, Retryable
from schemas.alert import AlertEvent
from schemas.settings import Settings
from tests.support.alert_events import ALL_TYPES, KINDS, alert_event, case_name, extra_events
from tests.support.golden import check_golden
from tests.support.smtp import Inbox, free_port, password_checker, smtp_server
from tests.support.tls import local_ca
from workers.channels import load_notifier
from workers.channels.base import ConfigurationError
from workers.channels.email import EmailNotifier

SENDER = "alertq@example.org"
PASSWORD = "smtp-Pa55word-s3cret"
UI = "https://oitc.example.org"


def notifier(port: int, **channel: Any) -> EmailNotifier:
    settings = Settings(
        channels={"email": {"host": "127.0.0.1", "port": port, "sender": SENDER, "timeout": 5, **channel}}
    )
    made = load_notifier("email", settings.channels.email)
    assert isinstance(made, EmailNotifier)
    return made


def received_message(inbox: Inbox) -> EmailMessage:
    assert len(inbox.received) == 1, f"expected one mail, got {len(inbox.received)}"
    message = email.message_from_bytes(inbox.received[0].original_content or b"", policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def as_golden(inbox: Inbox) -> str:
    """Envelope, the headers a reader sees, then both parts; only Date: (the send time) is normalised."""
    envelope = inbox.received[0]
    message = received_message(inbox)
    date = email.utils.parsedate_to_datetime(message["Date"])
    assert date.tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and rich is not None
    lines = [f"Envelope-From: {envelope.mail_from}", f"Envelope-To: {', '.join(envelope.rcpt_tos)}"]
    for name in ("Subject", "From", "To", "Message-ID", "X-Alertq-Event-Id", "Auto-Submitted"):
        lines.append(f"{name}: {message[name]}")
    lines.append("Date: <send time>")
    lines += ["", f"--- {plain.get_content_type()}; charset={plain.get_content_charset()} ---", plain.get_content()]
    lines += [f"--- {rich.get_content_type()}; charset={rich.get_content_charset()} ---", rich.get_content()]
    # SMTP carries CRLF line ends; the golden file keeps plain newlines.
    return "\n".join(lines).replace("\r\n", "\n")


def deliver_and_check_golden(event: AlertEvent, name: str) -> EmailMessage:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        notifier(port, ui_base_url=UI).send(event)
    check_golden("email", f"{name}.txt", as_golden(inbox))
    return received_message(inbox)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("notification_type", ALL_TYPES)
def test_mail_per_type_matches_golden(notification_type: str, kind: str) -> None:
    event = alert_event(notification_type, kind, "email")
    message = deliver_and_check_golden(event, case_name(notification_type, kind))
    what = "Host Alert: web01 is" if kind == "host" else "Service Alert: web01/Disk /var is"
    assert message["Subject"] == f"** {notification_type} {what} {event.state_name} **"
    assert message["To"] == "oncall@example.org"
    assert message["X-Alertq-Event-Id"] == event.event_id


def test_escalated_problem_matches_golden() -> None:
    message = deliver_and_check_golden(extra_events("email")["escalated-problem-service"], "escalated-problem-service")
    assert "Escalated (step 2, since 2026-11-27 09:00:00 UTC)" in body(message, "plain")


def test_hostile_text_is_escaped_in_html_and_cannot_inject_headers() -> None:
    message = deliver_and_check_golden(extra_events("email")["hostile-problem-service"], "hostile-problem-service")
    html = body(message, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Injected" not in message  # the newline in the service name did not make a header
    assert "\n" not in message["Subject"]


def test_recipients_come_from_settings_when_the_event_names_no_contact() -> None:
    inbox = Inbox()
    event = alert_event("PROBLEM", "host", "email", contact=None)
    with smtp_server(inbox) as port:
        notifier(port, recipients=["ops@example.org", "noc@example.org"]).send(event)
    assert inbox.received[0].rcpt_tos == ["ops@example.org", "noc@example.org"]
    assert received_message(inbox)["To"] == "ops@example.org, noc@example.org"


def test_no_recipient_at_all_is_permanent_and_sends_nothing() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port, pytest.raises(Permanent, match="no recipient"):
        notifier(port).send(alert_event("PROBLEM", "host", "email", contact={"name": "x", "email": None}))
    assert inbox.received == []


def test_a_contact_address_with_a_header_in_it_is_refused() -> None:
    inbox = Inbox()
    event = alert_event("PROBLEM", "host", "email", contact={"email": "a@example.org\r\nBcc: evil@example.org"})
    with smtp_server(inbox) as port, pytest.raises(Permanent, match="not a plain e-mail address"):
        notifier(port).send(event)
    assert inbox.received == []


def test_message_id_is_the_same_for_a_retry_of_the_same_event() -> None:
    inbox = Inbox()
    event = alert_event("PROBLEM", "host", "email")
    with smtp_server(inbox) as port:
        notifier(port).send(event)
        notifier(port).send(event)
    ids = [email.message_from_bytes(e.original_content or b"")["Message-ID"] for e in inbox.received]
    assert ids[0] == ids[1] == "<evt-problem-host-0001@example.org>"


# -- SMTP answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inbox", "outcome", "code"),
    [
        (Inbox(rcpt_reply="451 4.3.0 Mailbox temporarily unavailable"), Retryable, "451"),
        (Inbox(rcpt_reply="550 5.1.1 Mailbox unavailable"), Permanent, "550"),
        (Inbox(data_reply="452 4.3.1 Insufficient system storage"), Retryable, "452"),
        (Inbox(data_reply="554 5.7.1 Message rejected as spam"), Permanent, "554"),
    ],
    ids=["rcpt-4xx", "rcpt-5xx", "data-4xx", "data-5xx"],
)
def test_smtp_replies_4xx_retry_and_5xx_are_permanent(inbox: Inbox, outcome: type[Exception], code: str) -> None:
    with smtp_server(inbox) as port, pytest.raises(outcome, match=code):
        notifier(port).send(alert_event("PROBLEM", "service", "email"))
    assert inbox.received == []


def test_connection_refused_is_retryable() -> None:
    with pytest.raises(Retryable, match="connection failed"):
        notifier(free_port()).send(alert_event("PROBLEM", "host", "email"))


def test_a_server_that_never_greets_times_out_as_retryable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepted by the kernel, never answered
        port = silent.getsockname()[1]
        with pytest.raises(Retryable, match="timed out"):
            notifier(port, timeout=0.3).send(alert_event("PROBLEM", "host", "email"))


def test_starttls_verifies_the_certificate_and_works_with_a_ca_bundle(tmp_path) -> None:
    ca = local_ca(tmp_path)
    inbox = Inbox()
    event = alert_event("PROBLEM", "host", "email")
    with smtp_server(inbox, tls_context=ca.server_context, require_starttls=True) as port:
        with pytest.raises(Retryable, match="TLS error"):
            notifier(port, security="starttls").send(event)
        assert inbox.received == []
        notifier(port, security="starttls", ca_bundle=str(ca.ca_file)).send(event)
    assert len(inbox.received) == 1


def test_starttls_asked_of_a_server_without_it_is_permanent() -> None:
    with smtp_server(Inbox()) as port, pytest.raises(Permanent, match="STARTTLS"):
        notifier(port, security="starttls").send(alert_event("PROBLEM", "host", "email"))


def test_implicit_tls_verifies_the_certificate_and_works_with_a_ca_bundle(tmp_path) -> None:
    ca = local_ca(tmp_path)
    inbox = Inbox()
    event = alert_event("PROBLEM", "host", "email")
    with smtp_server(inbox, ssl_context=ca.server_context) as port:
        with pytest.raises(Retryable, match="TLS error"):
            notifier(port, security="ssl").send(event)
        notifier(port, security="ssl", ca_bundle=str(ca.ca_file)).send(event)
    assert len(inbox.received) == 1


def test_auth_over_starttls_delivers_and_a_wrong_password_is_permanent(tmp_path) -> None:
    ca = local_ca(tmp_path)
    inbox = Inbox()
    event = alert_event("PROBLEM", "host", "email")
    server = {"tls_context": ca.server_context, "require_starttls": True, "auth_required": True,
              "authenticator": password_checker("alertq", PASSWORD)}  # fmt: skip
    tls = {"security": "starttls", "ca_bundle": str(ca.ca_file)}
    with smtp_server(inbox, **server) as port:
        notifier(port, username="alertq", password=PASSWORD, **tls).send(event)
        assert len(inbox.received) == 1
        with pytest.raises(Permanent, match="authentication failed: 535") as caught:
            notifier(port, username="alertq", password="wrong-" + PASSWORD, **tls).send(event)
        assert PASSWORD not in str(caught.value)
        with pytest.raises(Permanent, match="530"):  # no credentials configured, server insists
            notifier(port, **tls).send(event)
    assert len(inbox.received) == 1


def test_username_without_password_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="username and"):
        notifier(25, username="alertq")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_password_in_errors_or_logs(tmp_path, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    ca = local_ca(tmp_path)
    event = alert_event("PROBLEM", "host", "email")
    reasons = []
    server = {"tls_context": ca.server_context, "auth_required": True, "auth_require_tls": False,
              "authenticator": password_checker("alertq", "another-password")}  # fmt: skip
    with smtp_server(Inbox(), **server) as port:
        for channel in (
            {"security": "none"},  # wrong password
            {"security": "starttls"},  # certificate not trusted
            {"security": "ssl"},  # TLS to a plain server
        ):
            with pytest.raises((Retryable, Permanent)) as caught:
                notifier(port, username="alertq", password=PASSWORD, **channel).send(event)
            reasons.append(f"{caught.value} {caught.value!r}")
    seen = "\n".join(reasons) + caplog.text + "".join(capsys.readouterr())
    assert "authentication failed" in seen and "TLS error" in seen
    assert PASSWORD not in seen


def test_invalid_unicode_in_output_is_delivered() -> None:
    inbox = Inbox()
    host = {"id": "h1", "name": "h1", "display_name": "web\udc00"}
    event = alert_event("PROBLEM", "host", "email", output="bad \ud800 surrogate", host=host)
    with smtp_server(inbox) as port:
        notifier(port).send(event)
    assert "bad \ufffd surrogate" in body(received_message(inbox), "plain")
    assert received_message(inbox)["Subject"] == "** PROBLEM Host Alert: web\ufffd is DOWN **"
