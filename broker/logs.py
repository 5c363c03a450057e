"""structlog set-up shared by every process: JSON lines when not on a terminal, readable on one."""

from __future__ import annotations

import logging
import sys

import structlog

from schemas.settings import LogSettings


def configure(settings: LogSettings) -> None:
    level = getattr(logging, settings.level.upper())
    use_json = settings.format == "json" or (settings.format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # pika logs every reconnect attempt at WARNING with tracebacks; alertq logs those itself, once.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    logging.getLogger("pika").setLevel(logging.CRITICAL)
