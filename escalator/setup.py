"""What the escalator needs before it consumes: routing file, state store, optional target check.
Each failure is one line for the operator (the command exits 1 with it)."""

from __future__ import annotations

from escalator.decisions import Decisions
from schemas.routing import RoutingError, load_routing
from schemas.settings import Settings
from state.store import open_store


class EscalatorSetupError(Exception):
    pass


def decisions_from(settings: Settings) -> Decisions:
    if settings.routing_file is None:
        raise EscalatorSetupError(
            "routing_file is not set: the escalator needs contacts and policies "
            "(ALERTQ_ROUTING_FILE=/etc/alertq/routing.toml; example: docs/routing.example.toml)"
        )
    try:
        routing = load_routing(settings.routing_file, set(settings.channels.enabled_names()))
    except RoutingError as exc:
        raise EscalatorSetupError(str(exc)) from None
    target = None
    if settings.escalator.check_target:
        reason = settings.ack_target.problem()
        if reason is not None:
            raise EscalatorSetupError(f"escalator.check_target is on but the target is not usable: {reason}")
        from cores import make_target

        target = make_target(settings.ack_target)
    try:
        store = open_store(settings.state_store)
    except Exception as exc:  # psycopg's and sqlite's errors: say which store, never its password
        from schemas.settings import mask_url

        raise EscalatorSetupError(
            f"state_store {mask_url(settings.state_store)}: cannot open: {' '.join(str(exc).split())}"
        ) from None
    return Decisions(routing, store, target, catch_up_after=settings.escalator.sweep_after)
