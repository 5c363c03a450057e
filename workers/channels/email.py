"""E-mail over SMTP: a Nagios-style subject, a plain-text body and an HTML alternative.

To is the event's contact e-mail (the core notifies once per contact) or else the configured
recipients. The Message-ID is made from the event id, so a retry of a mail that did arrive after
all carries the same Message-ID and mail clients can fold the duplicate. Answers: connection
failures, timeouts and 4xx replies are retryable; 5xx replies are permanent.

Storms (`fold`, on by default): when more mails wait for the SMTP server than its `rate_limit` lets
out within `fold.window` seconds (the chats' rule, workers/folds.py `StormRule`, which then paces
every mail), each recipient gets one mail listing its notifications ("37 problems on 12 hosts: …",
one line each, at most `fold.max_items` a mail) instead of one mail each; a recipient with a single
notification gets its ordinary mail.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage

import structlog

from delivery.outcomes import Permanent, Retryable
from schemas.alert import AlertEvent
from schemas.channels import PLAIN_ADDRESS, ChannelSettings, EmailSettings
from workers.channels.base import ONE_BY_ONE, Notifier
from workers.folds import NO_HOLD, Hold, StormRule, hold_of
from workers.render import Notice, one_line, render

log = structlog.get_logger(__name__)

REPLY_EXCERPT = 200
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]")


def subject(notice: Notice) -> str:
    """`** PROBLEM Service Alert: web01/Disk is CRITICAL **`, as Nagios' sample commands write it; a
    fallback copy starts with `[fallback] `, so the reader knows another channel should have told."""
    mark = "[fallback] " if notice.fallback else ""
    if notice.service is None:
        return f"{mark}** {notice.notification_type} Host Alert: {notice.host} is {notice.state} **"
    return f"{mark}** {notice.notification_type} Service Alert: {notice.host}/{notice.service} is {notice.state} **"


def text_body(notice: Notice) -> str:
    lines = ["***** alertq *****", ""]
    if notice.fallback:
        lines += [notice.fallback, ""]
    lines += [f"Notification Type: {notice.notification_type}", "", notice.summary, ""]
    lines += [f"{fact.label}: {fact.value}" for fact in notice.facts]
    lines += ["", f"Date/Time: {notice.when}"]
    if notice.escalation:
        lines += ["", notice.escalation]
    lines += ["", "Additional Info:", "", notice.output or "(no output)"]
    if notice.long_output:
        lines += ["", notice.long_output]
    links = _links(notice)
    if links:
        lines.append("")
        lines += [f"{label}: {url}" for label, url in links]
    return "\n".join(lines) + "\n"


def html_body(notice: Notice) -> str:
    e = html.escape
    rows = "\n".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(f.label)}</th><td>{e(f.value)}</td></tr>'
        for f in notice.facts
    )
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>' + e(notice.title) + "</title></head>",
        '<body style="font-family:sans-serif">',
        f'<div style="border-left:6px solid {e(notice.color)};padding-left:12px">',
        f"<h2>{e(notice.title)}</h2>",
        *([f"<p><strong>{e(notice.fallback)}</strong></p>"] if notice.fallback else []),
        f"<p>{e(notice.summary)}</p>",
        f"<table>\n{rows}\n</table>",
        f"<p>Date/Time: {e(notice.when)}</p>",
    ]
    if notice.escalation:
        parts.append(f"<p><strong>{e(notice.escalation)}</strong></p>")
    parts.append(f"<pre>{e(notice.output or '(no output)')}</pre>")
    if notice.long_output:
        parts.append(f"<pre>{e(notice.long_output)}</pre>")
    for label, url in _links(notice):
        parts.append(f'<p><a href="{e(url)}">{e(label)}</a></p>')
    parts += ["</div>", "</body></html>"]
    return "\n".join(parts) + "\n"


def _links(notice: Notice) -> list[tuple[str, str]]:
    links = []
    if notice.host_url:
        links.append(("Host in openITCOCKPIT", notice.host_url))
    if notice.service_url:
        links.append(("Service in openITCOCKPIT", notice.service_url))
    return links


class EmailNotifier(Notifier):
    name = "email"

    def __init__(self, settings: ChannelSettings) -> None:
        super().__init__(settings)
        if not isinstance(settings, EmailSettings):
            raise TypeError("EmailNotifier needs EmailSettings")
        self.config = settings
        rate, fold = settings.rate_limit, settings.fold
        self.rule = StormRule(rate.per_second, rate.burst, fold) if fold.enabled else None

    def paces_itself(self, event: AlertEvent) -> bool:
        return self.rule is not None  # folding: the storm rule's budget paces every mail

    def may_fold(self, event: AlertEvent) -> bool:
        return self.rule is not None

    def fold_hold(self) -> Hold:
        return hold_of(self.config.fold) if self.rule is not None else NO_HOLD

    def fold(self, events: list[AlertEvent]) -> dict[str, object] | None:
        if self.rule is None or not events or not self.rule.worth_folding(self.target(events[0]), len(events)):
            return None
        outcomes: dict[str, object] = {}
        by_recipients: dict[tuple[str, ...], list[AlertEvent]] = {}
        for event in events:
            try:
                by_recipients.setdefault(tuple(self.recipients(event)), []).append(event)
            except Permanent:
                outcomes[event.event_id] = ONE_BY_ONE  # dead-lettered on its own, with the reason
        for recipients, mine in by_recipients.items():
            if len(mine) == 1:
                outcomes[mine[0].event_id] = ONE_BY_ONE
                continue
            size = self.config.fold.max_items
            for chunk in (mine[start : start + size] for start in range(0, len(mine), size)):
                try:
                    self._deliver(self.digest(chunk, list(recipients)), list(recipients), chunk[0])
                except (Retryable, Permanent) as exc:
                    outcomes.update({e.event_id: exc for e in chunk})
                    continue
                log.info("digest.mailed", channel=self.name, events=len(chunk))
                outcomes.update({e.event_id: None for e in chunk})
        return outcomes

    def digest(self, events: list[AlertEvent], recipients: list[str], now: datetime | None = None) -> EmailMessage:
        """One mail listing `events` for these recipients: the digest's headline, then a line each."""
        from workers.conversations import digest  # the chats' headline; loaded only when folding
        from workers.conversations.store import State

        title = digest.headline(digest.PartView(tuple(digest.Line(e, State.OPEN, None, None) for e in events), 0, 1))
        lines = ["***** alertq *****", "", title, ""]
        for event in events:
            notice = render(event, self.config.ui_base_url)
            first = (notice.output or "").strip().splitlines()[:1]
            lines.append(
                f"- {notice.notification_type} {notice.label} is {notice.state}" + (f": {first[0]}" if first else "")
            )
        msg = EmailMessage()
        msg["Subject"] = one_line(f"** {title} **")
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(recipients)
        msg["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
        # From the events it lists: a retry of the same digest carries the same Message-ID.
        key = hashlib.sha256(",".join(e.event_id for e in events).encode()).hexdigest()[:32]
        domain = self.config.sender.rpartition("@")[2] or "alertq.invalid"
        msg["Message-ID"] = f"<digest-{key}@{_MSGID_UNSAFE.sub('_', domain)}>"
        msg["X-Alertq-Digest"] = str(len(events))
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def target(self, event: AlertEvent) -> str:
        return f"email:{self.config.host}:{self.config.port}"

    def recipients(self, event: AlertEvent) -> list[str]:
        if event.contact is not None and event.contact.email:
            address = event.contact.email.strip()
            if not PLAIN_ADDRESS.match(address):
                raise Permanent("the event's contact e-mail is not a plain e-mail address")
            return [address]
        if not self.config.recipients:
            raise Permanent("no recipient: the event names no contact e-mail and channels.email.recipients is empty")
        return list(self.config.recipients)

    def message(self, event: AlertEvent, recipients: list[str], now: datetime | None = None) -> EmailMessage:
        notice = render(event, self.config.ui_base_url)
        msg = EmailMessage()
        msg["Subject"] = subject(notice)
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(recipients)
        msg["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
        msg["Message-ID"] = self._message_id(event)
        msg["X-Alertq-Event-Id"] = one_line(event.event_id)
        # RFC 3834: an automatic message; vacation responders must not answer it.
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text_body(notice))
        msg.add_alternative(html_body(notice), subtype="html")
        return msg

    def send(self, event: AlertEvent, body: bytes | None = None) -> None:
        recipients = self.recipients(event)
        self._deliver(self.message(event, recipients), recipients, event)

    def _deliver(self, msg: EmailMessage, recipients: list[str], event: AlertEvent) -> None:
        if self.rule is not None:
            self.rule.pace(self.target(event))
        try:
            smtp = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from None
        try:
            refused = smtp.send_message(msg, from_addr=self.config.sender, to_addrs=recipients)
        except (smtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from None
        finally:
            _quit_quietly(smtp)
        if refused:
            # Delivered to the others: retrying would send them the mail again.
            log.warning(
                "some recipients refused",
                event_id=event.event_id,
                channel=self.name,
                replies=sorted({code for code, _ in refused.values()}),
            )

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        if cfg.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._tls())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if cfg.username is not None and cfg.password is not None:
                smtp.login(cfg.username, cfg.password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.config.ca_bundle) if self.config.ca_bundle else None)
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _message_id(self, event: AlertEvent) -> str:
        domain = self.config.sender.rpartition("@")[2] or "alertq.invalid"
        return f"<{_MSGID_UNSAFE.sub('_', event.event_id)}@{_MSGID_UNSAFE.sub('_', domain)}>"


def _classify(exc: BaseException) -> Retryable | Permanent:
    """SMTP's answer as the runtime's outcome: 4xx and network trouble retryable, 5xx permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        reason = "all recipients refused: " + ", ".join(str(c) for c in codes)
        return Retryable(reason) if all(400 <= c < 500 for c in codes) else Permanent(reason)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # Without the server's text: some servers echo what was sent, credentials included.
        reason = f"authentication failed: {exc.smtp_code}"
        return Retryable(reason) if 400 <= exc.smtp_code < 500 else Permanent(reason)
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        reason = f"SMTP {exc.smtp_code}: {one_line(reply)[:REPLY_EXCERPT]}"
        return Retryable(reason) if exc.smtp_code < 500 else Permanent(reason)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # The server does not offer STARTTLS or AUTH: only a configuration change helps.
        return Permanent(f"server does not support what the settings ask: {exc}")
    if isinstance(exc, ssl.SSLError):
        return Retryable(f"TLS error: {type(exc).__name__}: {exc.reason or ''}".rstrip(": "))
    if isinstance(exc, TimeoutError):
        return Retryable("timed out")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a read timeout into "Connection unexpectedly closed: timed out".
        return Retryable("timed out" if "timed out" in str(exc) else "connection lost")
    return Retryable(f"connection failed: {type(exc).__name__}")


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    # After the DATA reply the mail is the server's; a failing QUIT must not cause a resend.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
