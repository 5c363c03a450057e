"""Talking to monitoring cores: one module per core, each a `Target` (see base.py), that the ack
forwarder acknowledges through and the escalator asks whether a problem is still unacknowledged; this
registry names every one by its `ack_target.kind`."""

from __future__ import annotations

from collections.abc import Callable

from cores.base import Target
from cores.icinga2 import Icinga2
from cores.nagios import NagiosCommandFile
from cores.openitcockpit import OpenItcockpit
from schemas.ack_listener import AckTargetSettings

TARGETS: dict[str, Callable[[AckTargetSettings], Target]] = {
    "nagios": NagiosCommandFile,
    "openitcockpit": OpenItcockpit,
    "icinga2": Icinga2,
}


def make_target(settings: AckTargetSettings) -> Target:
    return TARGETS[settings.kind](settings)
