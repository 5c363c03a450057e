"""The text of a test core's Nagios 4 configuration: nagios.cfg, the objects, the alertq TOML.

Everything here is plain text generation, kept apart from running the core (tests/support/nagios.py).
The notification commands are openITCOCKPIT's module command lines with the module binary replaced,
as an operator switching to alertq would do it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The openITCOCKPIT notification command arguments, verbatim from its documentation
# (/work/shared/reference/openitcockpit-notification-docs.de.md); only the binary in front changes.
MATTERMOST_HOST_ARGS = (
    '--type Host --notificationtype "$NOTIFICATIONTYPE$" --hostuuid "$HOSTNAME$" --state "$HOSTSTATEID$" '
    '--output "$HOSTOUTPUT$" --ackauthor "$NOTIFICATIONAUTHOR$" --ackcomment "$NOTIFICATIONCOMMENT$"'
)
MATTERMOST_SERVICE_ARGS = (
    '--type Service --notificationtype "$NOTIFICATIONTYPE$" --hostuuid "$HOSTNAME$" --serviceuuid "$SERVICEDESC$" '
    '--state "$SERVICESTATEID$" --output "$SERVICEOUTPUT$" --ackauthor "$NOTIFICATIONAUTHOR$" '
    '--ackcomment "$NOTIFICATIONCOMMENT$"'
)
SLACK_HOST_ARGS = (
    '--type Host --notificationtype $NOTIFICATIONTYPE$ --hostname "$HOSTNAME$" --hostaddress "$HOSTADDRESS$" '
    '--hoststate "$HOSTSTATEID$" --output "$HOSTOUTPUT$"'
)
SLACK_SERVICE_ARGS = (
    '--type Service --notificationtype $NOTIFICATIONTYPE$ --hostname "$HOSTNAME$" --hostaddress "$HOSTADDRESS$" '
    '--hoststate "$HOSTSTATEID$" --servicedesc "$SERVICEDESC$" --servicestate "$SERVICESTATEID$" '
    '--output "$SERVICEOUTPUT$"'
)


@dataclass(frozen=True)
class NotificationArgs:
    """The arguments of a host and a service notification command, after `alertq-enqueue --channel … --config …`."""

    host: str
    service: str


MATTERMOST = NotificationArgs(MATTERMOST_HOST_ARGS, MATTERMOST_SERVICE_ARGS)
SLACK = NotificationArgs(SLACK_HOST_ARGS, SLACK_SERVICE_ARGS)


def alertq_toml(broker_url: str, spool_dir: Path) -> str:
    """The settings alertq-enqueue reads with `--config`: the core's commands do not reliably see the
    test's environment, so broker and spool go in a file."""
    return (
        "# Written by tests/support/nagios.py for this core's notification commands.\n"
        f"[broker]\nurls = [{_toml_string(broker_url)}]\nconnect_timeout = 10.0\n\n"
        f"[spool]\ndir = {_toml_string(str(spool_dir))}\n"
    )


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _define(kind: str, directives: Mapping[str, str]) -> str:
    width = max(len(k) for k in directives)
    body = "".join(f"    {k.ljust(width)}  {v}\n" for k, v in directives.items())
    return f"define {kind} {{\n{body}}}\n\n"


def objects_cfg(
    *,
    host_command: str,
    service_command: str,
    hosts: Mapping[str, Sequence[str]],
    host_directives: Mapping[str, str],
    service_directives: Mapping[str, str],
    contact_directives: Mapping[str, str],
) -> str:
    """A 24x7 timeperiod, the two notification commands, contact `oncall` using them, and per host a
    host plus its services: passive checks only, HARD on the first result, one notification per
    problem (notification_interval 0). The directive maps override or add directives."""
    parts = [
        "# Written by tests/support/nagios.py. interval_length=1: every interval here is in seconds.\n\n",
        _define(
            "timeperiod",
            {"timeperiod_name": "24x7", "alias": "always"}
            | {day: "00:00-24:00" for day in ("monday", "tuesday", "wednesday", "thursday", "friday")}
            | {"saturday": "00:00-24:00", "sunday": "00:00-24:00"},
        ),
        _define("command", {"command_name": "alertq-host-notify", "command_line": host_command}),
        _define("command", {"command_name": "alertq-service-notify", "command_line": service_command}),
        # Never run in practice (active checks are off); a forced check reports UNKNOWN so it shows.
        _define(
            "command",
            {"command_name": "passive-only", "command_line": "/bin/sh -c 'echo passive only; exit 3'"},
        ),
        _define(
            "contact",
            {
                "contact_name": "oncall",
                "alias": "On call",
                "email": "oncall@example.org",
                "pager": "+4917000000",
                "host_notifications_enabled": "1",
                "service_notifications_enabled": "1",
                "host_notification_period": "24x7",
                "service_notification_period": "24x7",
                "host_notification_options": "d,u,r,f,s",
                "service_notification_options": "w,u,c,r,f,s",
                "host_notification_commands": "alertq-host-notify",
                "service_notification_commands": "alertq-service-notify",
            }
            | dict(contact_directives),
        ),
    ]
    for host, services in hosts.items():
        parts.append(
            _define(
                "host",
                {
                    "host_name": host,
                    "alias": host,
                    "address": "127.0.0.1",
                    "check_command": "passive-only",
                    "active_checks_enabled": "0",
                    "passive_checks_enabled": "1",
                    "check_freshness": "0",
                    "max_check_attempts": "1",
                    "check_interval": "5",
                    "retry_interval": "1",
                    "check_period": "24x7",
                    "contacts": "oncall",
                    "notifications_enabled": "1",
                    "notification_period": "24x7",
                    "notification_options": "d,u,r,f,s",
                    "notification_interval": "0",  # one notification per problem unless a test asks for more
                    "first_notification_delay": "0",
                    "flap_detection_enabled": "0",
                }
                | dict(host_directives),
            )
        )
        for service in services:
            parts.append(
                _define(
                    "service",
                    {
                        "host_name": host,
                        "service_description": service,
                        "check_command": "passive-only",
                        "active_checks_enabled": "0",
                        "passive_checks_enabled": "1",
                        "check_freshness": "0",
                        "max_check_attempts": "1",
                        "check_interval": "5",
                        "retry_interval": "1",
                        "check_period": "24x7",
                        "contacts": "oncall",
                        "notifications_enabled": "1",
                        "notification_period": "24x7",
                        "notification_options": "w,u,c,r,f,s",
                        "notification_interval": "0",
                        "first_notification_delay": "0",
                        "flap_detection_enabled": "0",
                        "is_volatile": "0",
                    }
                    | dict(service_directives),
                )
            )
    return "".join(parts)


def main_cfg(workdir: Path, user: str, overrides: Mapping[str, str]) -> str:
    """nagios.cfg with every path inside workdir and the timing shrunk for tests; overrides win."""
    settings = {
        "log_file": workdir / "nagios.log",
        "cfg_file": workdir / "objects.cfg",
        "object_cache_file": workdir / "objects.cache",
        "precached_object_file": workdir / "objects.precache",
        "resource_file": workdir / "resource.cfg",
        "status_file": workdir / "status.dat",
        "status_update_interval": 1,
        "nagios_user": user,
        "nagios_group": user,
        "check_external_commands": 1,
        "command_file": workdir / "rw" / "nagios.cmd",
        "query_socket": workdir / "rw" / "nagios.qh",
        "lock_file": workdir / "nagios.lock",
        "temp_file": workdir / "nagios.tmp",
        "temp_path": workdir / "tmp",
        "check_result_path": workdir / "checkresults",
        "check_result_reaper_frequency": 1,
        "state_retention_file": workdir / "retention.dat",
        "retain_state_information": 0,  # every core starts from a clean slate
        "use_syslog": 0,  # the shared machine's syslog is no place for test noise
        "log_rotation_method": "n",
        "log_archive_path": workdir,
        "log_notifications": 1,
        "log_service_retries": 1,
        "log_host_retries": 1,
        "log_event_handlers": 1,
        "log_initial_states": 1,
        "log_current_states": 1,
        "log_external_commands": 1,
        "log_passive_checks": 1,
        "interval_length": 1,
        "execute_service_checks": 1,
        "accept_passive_service_checks": 1,
        "execute_host_checks": 1,
        "accept_passive_host_checks": 1,
        "passive_host_checks_are_soft": 0,
        "enable_notifications": 1,
        "enable_event_handlers": 0,
        "enable_flap_detection": 0,
        "process_performance_data": 0,
        "check_for_orphaned_services": 0,
        "check_for_orphaned_hosts": 0,
        "check_service_freshness": 0,
        "check_host_freshness": 0,
        "check_for_updates": 0,
        "notification_timeout": 60,
        "date_format": "iso8601",
        # Debian's default: the core strips these from output macros before the shell sees them.
        "illegal_object_name_chars": "`~!$%^&*|'\"<>?,()=",
        "illegal_macro_output_chars": "`~$&|'\"<>",
        "enable_environment_macros": 0,
        "admin_email": "nagios@localhost",
        "admin_pager": "pagenagios@localhost",
    } | dict(overrides)
    lines = ["# Written by tests/support/nagios.py; see NagiosCore for what each choice is for."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def alertq_check_objects(checks: Mapping[tuple[str, str], str], alertq: str) -> str:
    """Active service checks that run `alertq` (the command line `alertq` already names the core's
    settings file): per (host, service) a command `alertq-check-<n>` and the service using it. The
    check interval is long, so in a test's time the check runs when the test forces it
    (SCHEDULE_FORCED_SVC_CHECK) and perhaps once at start-up; notifications are off, so a WARNING
    here enqueues nothing."""
    parts = []
    for n, ((host, service), args) in enumerate(checks.items()):
        command = f"alertq-check-{n}"
        parts.append(_define("command", {"command_name": command, "command_line": f"{alertq} {args}"}))
        parts.append(
            _define(
                "service",
                {
                    "host_name": host,
                    "service_description": service,
                    "check_command": command,
                    "active_checks_enabled": "1",
                    "passive_checks_enabled": "0",
                    "check_freshness": "0",
                    "max_check_attempts": "1",
                    "check_interval": "3600",
                    "retry_interval": "3600",
                    "check_period": "24x7",
                    "contacts": "oncall",
                    "notifications_enabled": "0",
                    "notification_period": "24x7",
                    "flap_detection_enabled": "0",
                },
            )
        )
    return "".join(parts)


# A second contact with the same notification commands as the default one (two contacts per problem).
BACKUP_CONTACT = """
define contact {
    contact_name                   backup
    alias                          Backup
    host_notifications_enabled     1
    service_notifications_enabled  1
    host_notification_period       24x7
    service_notification_period    24x7
    host_notification_options      d,u,r,f,s
    service_notification_options   w,u,c,r,f,s
    host_notification_commands     alertq-host-notify
    service_notification_commands  alertq-service-notify
}
"""
