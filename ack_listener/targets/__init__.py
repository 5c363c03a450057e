"""Where acknowledgements go: one module per monitoring core, each a `Target` (see base.py)."""

from __future__ import annotations

from ack_listener.targets.base import Target
from schemas.ack_listener import AckTargetSettings


def make_target(settings: AckTargetSettings) -> Target:
    if settings.kind == "nagios":
        from ack_listener.targets.nagios import NagiosCommandFile

        return NagiosCommandFile(settings)
    if settings.kind == "openitcockpit":
        from ack_listener.targets.openitcockpit import OpenItcockpit

        return OpenItcockpit(settings)
    from ack_listener.targets.icinga2 import Icinga2

    return Icinga2(settings)
