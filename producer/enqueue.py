"""alertq-enqueue: the command the monitoring core runs once per contact per notification.

Top-down: parse flags → build one event per channel → store each in the spool (fsync) → if a relay
is alive it publishes them, done → else publish directly with confirms → broker down: leave them in
the spool for the relay, warn, exit 0.

Standard library only until the direct path: in an alert storm the core forks thousands of these, so
start-up time is the cost that matters (see tests/perf). Nor any module of it that costs: no `json`,
`re`, `tomllib`, `datetime` or `typing` on the way to a live relay (tests/test_enqueue.py holds that);
the command is started by scripts/alertq-enqueue, not by a generated console script.
"""

from __future__ import annotations

import os
import sys

from producer import event as event_builder
from producer import flags as cli_flags
from producer import jsontext, liteconfig, spool

EXIT_OK = 0
EXIT_NOT_STORED = 1
EXIT_USAGE = 2


def _say(level: str, text: str) -> None:
    # One line, always: the core logs stderr and a multi-line message is hard to grep. Valid text only,
    # whatever stderr's encoding is set to accept.
    sys.stderr.write(f"alertq-enqueue: {level}: {cli_flags.text(' '.join(text.split()))}\n")


def main(argv: list[str] | None = None) -> int:
    try:
        parsed = cli_flags.parse(sys.argv[1:] if argv is None else argv)
        if parsed is None:
            sys.stdout.write(cli_flags.HELP)
            return EXIT_OK
        warnings: list[str] = []
        events = event_builder.build_events(parsed, sys.stdin.buffer if sys.stdin else None, warnings)
        # Paths as given: bytes that are not UTF-8 still name the file.
        config = liteconfig.LiteConfig(parsed.raw("config"))
        spool_dir = parsed.raw("spool_dir") or config.spool_dir()
    except (cli_flags.UsageError, liteconfig.ConfigError) as exc:
        _say("error", str(exc))
        return EXIT_USAGE
    for warning in warnings:
        _say("warning", warning)

    stored: list[tuple[str | None, dict[str, object], bytes]] = []
    spool_error: OSError | None = None
    for event in events:
        body = jsontext.dumps(event).encode()
        try:
            stored.append((spool.write(spool_dir, body), event, body))
        except OSError as exc:
            spool_error = exc
            stored.append((None, event, body))

    if spool_error is None and spool.relay_alive(spool_dir):
        return EXIT_OK
    return _publish_directly(config, spool_dir, stored, spool_error)


def _publish_directly(
    config: liteconfig.LiteConfig,
    spool_dir: str,
    stored: list[tuple[str | None, dict[str, object], bytes]],
    spool_error: OSError | None,
) -> int:
    from producer import direct  # pika is imported here, never on the relay path
    from producer.message import SpooledEvent

    pending = [
        SpooledEvent(path=path, body=body, routing_key=f"notify.{event['channel']}", event_id=str(event["event_id"]))
        for path, event, body in stored
    ]
    try:
        urls, timeout = config.broker_urls(), config.connect_timeout()
    except liteconfig.ConfigError as exc:
        if spool_error is not None:
            _say("error", f"event not stored: spool {spool_dir} failed ({spool_error.strerror}) and {exc}")
            return EXIT_NOT_STORED
        _say("error", f"{exc}; event kept in spool {spool_dir} for `alertq relay`")
        return EXIT_USAGE
    try:
        dead = direct.publish(urls, timeout, pending)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if spool_error is not None:
            _say(
                "error",
                f"event not stored: spool {spool_dir} failed ({spool_error.strerror}) and the broker failed ({reason})",
            )
            return EXIT_NOT_STORED
        _say("warning", f"broker unreachable ({reason}); event kept in spool {spool_dir} for `alertq relay`")
        return EXIT_OK
    for event in dead:
        _say(
            "warning",
            f"no queue for {event.routing_key}: event {event.event_id} dead-lettered as unroutable "
            "(is the channel enabled?)",
        )
    if spool_error is not None:
        _say("warning", f"spool {spool_dir} failed ({spool_error.strerror}); event published directly")
    return EXIT_OK


def run() -> None:
    """The command: `main`, then out without the interpreter's clean-up (about a tenth of the whole run).

    Nothing is left for that clean-up to do: every event is fsynced or published before `main` returns,
    the spool files are closed, and what was written to stdout and stderr is flushed here. Should the
    flush fail (a closed pipe), the ordinary exit reports it. The direct path (pika) imports logging,
    whose handlers the ordinary exit shuts down: after it, the exit is the ordinary one."""
    code = main()
    if "logging" in sys.modules:
        sys.exit(code)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: the core started us without that descriptor
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
