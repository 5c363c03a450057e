"""Nagios 4 / Naemon: one external command line into the core's command file (a FIFO).

`[ts] ACKNOWLEDGE_SVC_PROBLEM;host;service;sticky;notify;persistent;author;comment` (host: without the
service), or the `_EXPIRE` variant with the end time before the author. The other actions:
`SCHEDULE_SVC_DOWNTIME;host;service;start;end;1;0;duration;author;comment` (fixed, not triggered),
`SCHEDULE_FORCED_SVC_CHECK;host;service;now`, `REMOVE_SVC_ACKNOWLEDGEMENT;host;service` (and their
`_HOST_` twins without the service). `;` would start a new field
and a newline a new command, so both are replaced in author and comment. One write, below PIPE_BUF,
so lines of concurrent writers never interleave. No reader on the FIFO (core stopped) → retryable.

The object's state comes from the core's status.dat (`status_file`): `current_state`,
`problem_has_been_acknowledged`, `current_problem_id` and `last_time_ok` (`last_time_up` for a host);
no file, no such object, or a file older than `status_max_age` seconds (the core stopped writing it)
→ None (unknown).
"""

from __future__ import annotations

import errno
import os
import re
import time

import structlog

from cores import status_dat
from cores.base import CorePermanent, CoreRetryable, ProblemState, Target
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from schemas.ack_token import problem_id_of

log = structlog.get_logger("alertq.ack_target.nagios")

PIPE_BUF = 4096
FIELD_MAX = 1000
_UNSAFE = re.compile(r"[;\r\n\x00]+")


def neutralise(text: str) -> str:
    """A command field: no `;`, no line breaks, no NUL; clipped."""
    return _UNSAFE.sub(" ", text).strip()[:FIELD_MAX]


def command_line(ack: AckMessage, *, now: float, use_expire: bool = False, expire_after: int = 0) -> str:
    sticky = "2" if ack.sticky else "0"
    flags = [sticky, str(int(ack.notify)), str(int(ack.persistent))]
    if use_expire:
        flags.append(str(int(now) + expire_after))
    suffix = "_EXPIRE" if use_expire else ""
    if ack.service_id is None:
        command = f"ACKNOWLEDGE_HOST_PROBLEM{suffix}"
        target = [neutralise(ack.host_id)]
    else:
        command = f"ACKNOWLEDGE_SVC_PROBLEM{suffix}"
        target = [neutralise(ack.host_id), neutralise(ack.service_id)]
    fields = [command, *target, *flags, neutralise(ack.author), neutralise(ack.comment)]
    return f"[{int(now)}] " + ";".join(fields) + "\n"


def action_line(ack: AckMessage, *, now: float) -> str:
    """The command line of a Snooze, Recheck now or Unacknowledge."""
    host = neutralise(ack.host_id)
    service = None if ack.service_id is None else neutralise(ack.service_id)
    kind = "HOST" if service is None else "SVC"
    target = [host] if service is None else [host, service]
    if ack.action == "snooze":
        assert ack.downtime_start is not None and ack.downtime_end is not None  # AckMessage checks it
        start, end = int(ack.downtime_start.timestamp()), int(ack.downtime_end.timestamp())
        fields = [f"SCHEDULE_{kind}_DOWNTIME", *target, str(start), str(end), "1", "0", str(end - start)]
        fields += [neutralise(ack.author), neutralise(ack.comment)]
    elif ack.action == "recheck":
        fields = [f"SCHEDULE_FORCED_{kind}_CHECK", *target]
        fields.append(str(int(now)))
    elif ack.action == "unacknowledge":
        fields = [f"REMOVE_{kind}_ACKNOWLEDGEMENT", *target]
    else:
        raise ValueError(f"{ack.action} is not written by action_line")
    return f"[{int(now)}] " + ";".join(fields) + "\n"


class NagiosCommandFile(Target):
    name = "nagios"

    def __init__(self, settings: AckTargetSettings) -> None:
        assert settings.command_file is not None  # checked by AckTargetSettings.problem()
        self.path = settings.command_file
        self.use_expire = settings.use_expire
        self.expire_after = settings.expire_after
        self.status_file = settings.status_file
        self.status_max_age = settings.status_max_age

    def acknowledge(self, ack: AckMessage) -> None:
        self._write(command_line(ack, now=time.time(), use_expire=self.use_expire, expire_after=self.expire_after))

    def schedule_downtime(self, ack: AckMessage) -> None:
        self._write(action_line(ack, now=time.time()))

    def reschedule_check(self, ack: AckMessage) -> None:
        self._write(action_line(ack, now=time.time()))

    def remove_acknowledgement(self, ack: AckMessage) -> None:
        self._write(action_line(ack, now=time.time()))

    def object_known(self, host_id: str, service_id: str | None) -> bool | None:
        if self.status_file is None:
            return None
        try:
            if time.time() - self.status_file.stat().st_mtime > self.status_max_age:
                return None
            return status_dat.find(self.status_file, host_id, service_id) is not None
        except OSError:
            return None

    def _write(self, line: str) -> None:
        data = line.encode("utf-8", errors="replace")
        if len(data) >= PIPE_BUF:
            raise CorePermanent(
                f"command line of {len(data)} bytes does not fit one atomic write",
                "the acknowledgement is too long for the monitoring core's command file",
            )
        try:
            # O_NONBLOCK: with no core reading, open fails at once (ENXIO) instead of hanging the forwarder.
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND)
        except FileNotFoundError:
            raise CoreRetryable(
                f"command file {self.path} does not exist (core not running?)",
                "the monitoring core's command file is missing (is the core running?)",
            ) from None
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise CoreRetryable(
                    f"no core reads {self.path}", "the monitoring core is not reading its command file (is it running?)"
                ) from None
            raise CoreRetryable(
                f"cannot open {self.path}: {exc.strerror}", "the monitoring core's command file cannot be opened"
            ) from None
        try:
            written = os.write(fd, data)
        except OSError as exc:
            raise CoreRetryable(
                f"cannot write {self.path}: {exc.strerror}", "the monitoring core's command file cannot be written"
            ) from None
        finally:
            os.close(fd)
        if written != len(data):
            raise CoreRetryable(
                f"short write to {self.path}", "the monitoring core's command file took only part of the command"
            )

    def problem_state(self, host_id: str, service_id: str | None) -> ProblemState | None:
        if self.status_file is None:
            return None
        try:
            modified = self.status_file.stat().st_mtime
            if time.time() - modified > self.status_max_age:
                log.warning("ack_target.status_stale", status_file=str(self.status_file))
                return None
            fields = status_dat.find(self.status_file, host_id, service_id)
        except OSError as exc:
            log.warning("ack_target.status_unreadable", status_file=str(self.status_file), error=exc.strerror)
            return None
        if fields is None:
            return None
        try:
            state = int(fields["current_state"])
            acknowledged = int(fields["problem_has_been_acknowledged"])
        except (KeyError, ValueError):
            return None
        last_ok = fields.get("last_time_ok" if service_id is not None else "last_time_up", "")
        return ProblemState(
            state=state,
            acknowledged=acknowledged != 0,
            problem_id=problem_id_of(fields.get("current_problem_id")),
            last_ok=_epoch(last_ok),
            as_of=modified,
            in_downtime=_count(fields.get("scheduled_downtime_depth")),
            last_check=_epoch(fields.get("last_check")),
            next_check=_epoch(fields.get("next_check")),
        )


def _count(value: str | None) -> bool | None:
    return None if value is None or not value.isdigit() else int(value) > 0


def _epoch(value: str | None) -> float | None:
    return float(value) if value is not None and value.isdigit() and int(value) > 0 else None
