"""Where acknowledgements go: one module per monitoring core, each a `Target` (see base.py)."""

from __future__ import annotations

from cores.base import Target
from schemas.ack_listener import AckTargetSettings


def make_target(settings: AckTargetSettings) -> Target:
    if settings.kind == "nagios":
        from cores.nagios import NagiosCommandFile

        return NagiosCommandFile(settings)
    if settings.kind == "openitcockpit":
        from cores.openitcockpit import OpenItcockpit

        return OpenItcockpit(settings)
    from cores.icinga2 import Icinga2

    return Icinga2(settings)
