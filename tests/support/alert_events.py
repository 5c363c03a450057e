"""Alert events for channel tests: every notification type, host and service, with fixed values.

The values are fixed (ids, times, numbers) so that what a channel sends for them can be compared with
golden files byte for byte; only what a channel adds at send time (token expiry, Date:) varies.
"""

from __future__ import annotations

from typing import Any

from schemas.alert import ALERT_SCHEMA, KNOWN_NOTIFICATION_TYPES, AlertEvent

HOST_ID = "c36b8048-93ce-4385-ac19-ab5c90574b77"
SERVICE_ID = "74fd8f59-1348-4e16-85f0-4a5c57c7dd62"
UNKNOWN_TYPE = "SOMETHINGNEW"
ALL_TYPES = (*KNOWN_NOTIFICATION_TYPES, UNKNOWN_TYPE)
KINDS = ("host", "service")

# (host state, service state) each type is shown with: what the core would send alongside it.
STATES = {
    "PROBLEM": (1, 2),
    "RECOVERY": (0, 0),
    "ACKNOWLEDGEMENT": (1, 2),
    "FLAPPINGSTART": (1, 1),
    "FLAPPINGSTOP": (0, 0),
    "FLAPPINGDISABLED": (0, 1),
    "DOWNTIMESTART": (0, 0),
    "DOWNTIMEEND": (0, 0),
    "DOWNTIMECANCELLED": (0, 0),
    "CUSTOM": (2, 3),
    UNKNOWN_TYPE: (0, 1),
}
OUTPUTS = {
    ("host", 0): "PING OK - Packet loss = 0%, RTA = 0.41 ms",
    ("host", 1): "CRITICAL - Host Unreachable (10.0.0.11)",
    ("host", 2): "UNREACHABLE - parent router01 is down",
    ("service", 0): "DISK OK - free space: /var 41210 MB (80% inode=97%)",
    ("service", 1): "DISK WARNING - free space: /var 5120 MB (10% inode=95%)",
    ("service", 2): "DISK CRITICAL - free space: /var 512 MB (1% inode=93%)",
    ("service", 3): "UNKNOWN - check_disk timed out after 30 seconds",
}


def case_name(notification_type: str, kind: str) -> str:
    return f"{notification_type.lower()}-{kind}"


def alert_event(notification_type: str, kind: str, channel: str, **overrides: Any) -> AlertEvent:
    host_state, service_state = STATES.get(notification_type, (0, 1))
    state = host_state if kind == "host" else service_state
    data: dict[str, Any] = {
        "schema": ALERT_SCHEMA,
        "event_id": f"evt-{notification_type.lower()}-{kind}-0001",
        "created_at": "2026-11-27T09:30:00+00:00",
        "channel": channel,
        "kind": kind,
        "notification_type": notification_type,
        "host": {"id": HOST_ID, "name": HOST_ID, "display_name": "web01", "address": "10.0.0.11"},
        "service": None if kind == "host" else {"id": SERVICE_ID, "name": SERVICE_ID, "display_name": "Disk /var"},
        "state": state,
        "output": OUTPUTS[(kind, state)],
        "long_output": "",
        "notification_number": 3,
        "contact": {"name": "oncall", "email": "oncall@example.org", "pager": None},
        "source": {"producer_host": "oitc01", "core": "naemon"},
    }
    if notification_type in ("ACKNOWLEDGEMENT", "CUSTOM"):
        data["ack"] = {"author": "alice", "comment": "Looking into it, ticket OPS-4711"}
    data.update(overrides)
    return AlertEvent.model_validate(data)


def extra_events(channel: str) -> dict[str, AlertEvent]:
    """Cases beyond type x kind: an escalated problem, and names/output trying to break the payload."""
    hostile = (
        "*bold* _it_ ~strike~ `code` ```fence``` [link](http://evil.example) <http://evil.example|click> "
        "<!channel> @channel @here #general & \"quotes\" 'single' </pre><script>alert(1)</script> \\ | # > "
        "Grüße ✓ 🔥\nsecond line\r\nthird line\ttab"
    )
    return {
        "escalated-problem-service": alert_event(
            "PROBLEM",
            "service",
            channel,
            escalation={"policy": "db-oncall", "step": 2, "since": "2026-11-27T09:00:00+00:00"},
            long_output="/var/log 400 MB\n/var/lib 100 MB",
        ),
        "hostile-problem-service": alert_event(
            "PROBLEM",
            "service",
            channel,
            host={"id": HOST_ID, "name": HOST_ID, "display_name": "web<01> & *db*", "address": "10.0.0.11"},
            service={"id": SERVICE_ID, "name": SERVICE_ID, "display_name": "Disk [/var] _x_ @all\nInjected: 1"},
            output=hostile,
            long_output=hostile,
        ),
    }


def enqueue_latin1_problem(channel: str, env: dict[str, str]) -> None:
    """Run the real `alertq-enqueue` as a core with Latin-1 object names runs it: raw bytes that are not
    UTF-8 in the host, service and output (issue 11 item 1); it must store the event, quietly."""
    import subprocess

    enqueued = subprocess.run(
        [
            b"alertq-enqueue",
            *(b"--channel", channel.encode(), b"--type", b"Service", b"--notificationtype", b"PROBLEM"),
            *(b"--state", b"2", b"--hostuuid", b"caf\xe9-db01", b"--serviceuuid", b"Disque \xe9tat"),  # Latin-1 é
            *(b"--output", b"\xe9chec: disque plein"),
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (enqueued.returncode, enqueued.stderr) == (0, b"")
