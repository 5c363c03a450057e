"""Command-line flags of alertq-enqueue: openITCOCKPIT's two flag sets plus alertq's own.

Hand-written rather than argparse because plugin output is arbitrary text: argparse takes a value such
as `--output "--- CRITICAL ---"` for a flag and refuses the call, and a refused call is a lost alert.
Here every flag takes exactly the next argument as its value, whatever it looks like (or `--flag=value`).

Values are kept as Python received them: on Linux, argv bytes that are not UTF-8 (a core with Latin-1
object names) arrive as lone surrogates (surrogateescape). `Flags.get` hands out valid text, those bytes
replaced by U+FFFD, so no later stage can meet a surrogate (no encoder accepts one); `Flags.raw` keeps
them for the output texts, whose cut marker counts the bytes as they came.
"""

from __future__ import annotations

USAGE = "usage: alertq-enqueue --channel NAME --type Host|Service --notificationtype TYPE [flags…]"

HELP = f"""{USAGE}

Queue one monitoring notification for delivery by alertq. The monitoring core runs this once per
contact per notification. The event is stored in the spool directory first (fsynced), then handed to a
running `alertq relay`, or published straight to RabbitMQ when no relay runs. If the broker is down the
event stays in the spool and the relay publishes it later: nothing is lost.

openITCOCKPIT Mattermost module flags (accepted unchanged):
  --type Host|Service         what the notification is about
  --notificationtype TYPE     $NOTIFICATIONTYPE$: PROBLEM, RECOVERY, ACKNOWLEDGEMENT, … (any text)
  --hostuuid NAME             $HOSTNAME$ (a UUID in openITCOCKPIT)
  --serviceuuid NAME          $SERVICEDESC$ (a UUID in openITCOCKPIT)
  --state N                   $HOSTSTATEID$ or $SERVICESTATEID$ (a name such as CRITICAL works too)
  --output TEXT               $HOSTOUTPUT$ or $SERVICEOUTPUT$ ('-' reads standard input)
  --ackauthor TEXT            $NOTIFICATIONAUTHOR$
  --ackcomment TEXT           $NOTIFICATIONCOMMENT$

openITCOCKPIT Slack module flags (accepted unchanged):
  --hostname NAME  --hostaddress ADDR  --hoststate N  --servicedesc NAME  --servicestate N  --output TEXT

alertq flags:
  --channel NAME              where to deliver (mattermost, slack, email, webhook); repeat for several
  --contact NAME  --contact-email ADDR  --contact-pager NUMBER
  --notification-number N     $NOTIFICATIONNUMBER$
  --long-output TEXT          $LONGHOSTOUTPUT$ or $LONGSERVICEOUTPUT$ ('-' reads standard input)
  --host-display-name TEXT    $HOSTDISPLAYNAME$ (openITCOCKPIT: $HOSTALIAS$ or the host's name)
  --service-display-name TEXT $SERVICEDISPLAYNAME$
  --timestamp T               $TIMET$ (epoch seconds) or ISO-8601; default: now. A time that is not
                              a number or ISO-8601, not finite, before 2000 or more than a day ahead is
                              replaced by the time of receipt, with a warning line on stderr
  --problem-id ID             $SERVICEPROBLEMID$ or $HOSTPROBLEMID$: the core's id of this problem, which
                              ties chat acknowledgements to it (empty or 0: none)
  --escalation-policy NAME    escalation policy to apply instead of matching one by host/service
  --core NAME                 the sending core, for the record (default: naemon)
  --spool-dir DIR             overrides the spool directory setting
  --config FILE               alertq TOML file
                              (default: $ALERTQ_CONFIG, ./alertq.toml, /etc/alertq/alertq.toml)

Every value is kept as text (invalid UTF-8 replaced by U+FFFD); output is cut at 64 KiB with a marker
that says how many bytes were dropped.

A value that only describes the alert never costs the alert (one warning line on stderr each, exit 0):
a state that is none (7, an unexpanded $SERVICESTATEID$, digits other than ASCII 0-9) is sent as
UNKNOWN, for a host as DOWN (what the core makes of an UNKNOWN host check), in a RECOVERY as OK or UP;
a bad --timestamp becomes the time of receipt; a bad --notification-number or --problem-id is left out.

Exit status: 0 accepted (published or safely spooled); 2 bad invocation, nothing stored (an unknown
flag, a flag given twice or without its value, --channel, --type, --notificationtype, the host or the
service missing or unusable, no state flag at all); 1 the event could not be stored.

Example (openITCOCKPIT service notification command, binary replaced and --channel added):
  alertq-enqueue --channel mattermost --type Service --notificationtype "$NOTIFICATIONTYPE$" \\
    --hostuuid "$HOSTNAME$" --serviceuuid "$SERVICEDESC$" --state "$SERVICESTATEID$" \\
    --output "$SERVICEOUTPUT$" --ackauthor "$NOTIFICATIONAUTHOR$" --ackcomment "$NOTIFICATIONCOMMENT$" \\
    --problem-id "$SERVICEPROBLEMID$"
"""

# flag -> attribute; every flag takes one value.
VALUE_FLAGS = {
    "--type": "type",
    "--notificationtype": "notificationtype",
    "--hostuuid": "hostuuid",
    "--serviceuuid": "serviceuuid",
    "--state": "state",
    "--output": "output",
    "--ackauthor": "ackauthor",
    "--ackcomment": "ackcomment",
    "--hostname": "hostname",
    "--hostaddress": "hostaddress",
    "--hoststate": "hoststate",
    "--servicedesc": "servicedesc",
    "--servicestate": "servicestate",
    "--contact": "contact",
    "--contact-email": "contact_email",
    "--contact-pager": "contact_pager",
    "--notification-number": "notification_number",
    "--long-output": "long_output",
    "--host-display-name": "host_display_name",
    "--service-display-name": "service_display_name",
    "--timestamp": "timestamp",
    "--escalation-policy": "escalation_policy",
    "--problem-id": "problem_id",
    "--core": "core",
    "--spool-dir": "spool_dir",
    "--config": "config",
}
REPEATABLE = {"--channel"}


class UsageError(Exception):
    """A bad invocation; the message names the flag and fits on one line."""


def text(value: str) -> str:
    """A command-line value as valid text: undecodable bytes (surrogate-escaped) become U+FFFD."""
    if value.isascii():  # nearly always: nothing to do
        return value
    return raw_bytes(value).decode("utf-8", "replace")


def raw_bytes(value: str) -> bytes:
    """The bytes a command-line value came as (os.fsencode, without its dependence on the locale)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A surrogate that no byte came from (only an in-process caller can pass one): keep it visible
        # as bytes that decode to U+FFFD rather than fail.
        return value.encode("utf-8", "surrogatepass")


class Flags:
    # A plain class, not a dataclass: importing dataclasses costs the enqueue command more than all its work.
    __slots__ = ("channels", "values")

    def __init__(self) -> None:
        self.channels: list[str] = []
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        """The value as valid text (see the module's note), None when the flag was not given."""
        value = self.values.get(name)
        return None if value is None else text(value)

    def raw(self, name: str) -> str | None:
        """The value as received, undecodable bytes still surrogate-escaped."""
        return self.values.get(name)


def parse(argv: list[str]) -> Flags | None:
    """Parse argv (without the program name). Returns None when help was asked for."""
    flags = Flags()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("-h", "--help"):
            return None
        name, eq, inline = token.partition("=")
        if name not in VALUE_FLAGS and name not in REPEATABLE:
            if token.startswith("-"):
                raise UsageError(f"unknown flag {text(name)[:40]!r} (see --help)")
            raise UsageError(f"unexpected argument {text(token)[:40]!r}: every value follows its flag (see --help)")
        if eq:
            value = inline
        elif i + 1 < len(argv):
            i += 1
            value = argv[i]
        else:
            raise UsageError(f"{name} needs a value")
        if name in REPEATABLE:
            flags.channels.append(text(value))
        else:
            if VALUE_FLAGS[name] in flags.values:
                raise UsageError(f"{name} given twice")
            flags.values[VALUE_FLAGS[name]] = value
        i += 1
    return flags
