"""`alertq dlq …`: inspect, replay, purge, export and import dead letters (broker/dlq/ holds the logic)."""

from __future__ import annotations

import base64
import inspect
import json
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from alertq.common import load_settings, one_line
from broker import dead_letters

F = TypeVar("F", bound=Callable[..., Any])

FILTER_HELP = (
    textwrap.dedent("""
    \b
    Filters (each narrows; repeat one to widen, e.g. --channel slack --channel email):
      --channel, --reason, --host/--service (globs on name, display name or id),
      --type (notification type), --event-id, --since/--older-than (time dead-lettered).

    \b
    Reasons (--reason):
    """).lstrip("\n")
    + "".join(f"  {reason:<20}{meaning}\n" for reason, meaning in dead_letters.REASONS.items())
    + "Messages that do not match stay in alertq.dead, untouched and in their order.\n"
)


def with_filter_help(command: click.Command) -> None:
    command.help = inspect.cleandoc(command.help or "") + "\n\n" + FILTER_HELP.strip("\n")


def filter_options(func: F) -> F:
    options = [
        click.option("--channel", "channels", multiple=True, help="Channel the notification was for."),
        click.option("--reason", "reasons", multiple=True, help="Dead-letter reason."),
        click.option("--host", "hosts", multiple=True, help="Host name/display name/id glob, e.g. 'web-*'."),
        click.option("--service", "services", multiple=True, help="Service name/display name/id glob."),
        click.option("--type", "types", multiple=True, help="Notification type, e.g. PROBLEM."),
        click.option("--event-id", "event_ids", multiple=True, help="Exact event id (message_id)."),
        click.option("--since", help="Dead-lettered at most this long ago (2h, 7d) or since an ISO time."),
        click.option("--older-than", help="Dead-lettered longer ago than this (30m, 7d)."),
        click.option("--limit", type=click.IntRange(min=1), help="Act on at most this many matches."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_filter(kwargs: dict[str, Any]) -> Any:
    from broker.dlq.filters import Filter, parse_duration, parse_point_in_time

    now = datetime.now(UTC)
    try:
        since = parse_point_in_time(kwargs["since"], now) if kwargs.get("since") else None
        before = now - parse_duration(kwargs["older_than"]) if kwargs.get("older_than") else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return Filter(
        channels=tuple(kwargs.get("channels", ())),
        reasons=tuple(kwargs.get("reasons", ())),
        hosts=tuple(kwargs.get("hosts", ())),
        services=tuple(kwargs.get("services", ())),
        notification_types=tuple(kwargs.get("types", ())),
        event_ids=tuple(kwargs.get("event_ids", ())),
        dead_since=since,
        dead_before=before,
    )


def run_pass(action: Any, kwargs: dict[str, Any], label: str, limit: int | None = None) -> Any:
    """Run one pass with `action` over the dead letters; exit 1 with one line if it failed."""
    from alertq.progress import TerminalProgress
    from broker.dlq.scan import Pass

    settings = load_settings()
    return Pass(
        settings.broker,
        action,
        build_filter(kwargs),
        limit=limit if limit is not None else kwargs.get("limit"),
        progress=TerminalProgress(label),
        client_name=f"alertq dlq {label}",
    ).run()


def fail_if_error(result: Any, what: str) -> None:
    if result.error:
        raise click.ClickException(one_line(f"{what}: {result.error}"))


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def pass_summary(result: Any) -> dict[str, Any]:
    return {
        "depth": result.depth,
        "examined": result.examined,
        "matched": result.matched,
        "interrupted": result.interrupted,
        "notes": result.notes,
    }


def echo_notes(result: Any) -> None:
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.interrupted:
        click.echo("interrupted: stopped early, everything not done is still dead-lettered", err=True)


@click.group()
def dlq() -> None:
    """Dead letters: notifications that gave up, waiting in queue alertq.dead for an SRE.

    \b
    A typical session after fixing a broken Slack webhook:
      alertq dlq list --channel slack                      # what is there, and why
      alertq dlq show --event-id 5f0c…                     # one in full: headers and body
      alertq dlq replay --channel slack --reason permanent --dry-run
      alertq dlq replay --channel slack --reason permanent --rate 50
    \b
    Keep a copy before deleting:
      alertq dlq export --older-than 7d -o old.jsonl && alertq dlq purge --older-than 7d --yes
      alertq dlq import old.jsonl                          # puts them back exactly as they were
    """


@dlq.command("list")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document for scripts.")
def list_(as_json: bool, **kwargs: Any) -> None:
    """List dead letters, oldest first: when, why, which channel, host, service, last error.

    \b
    Examples:
      alertq dlq list
      alertq dlq list --channel slack --reason permanent --since 2h
      alertq dlq list --host 'db-*' --type PROBLEM --json | jq '.messages[].event_id'
    """
    from broker.dlq.actions import Collect

    action = Collect()
    result = run_pass(action, kwargs, "list")
    fail_if_error(result, "cannot read the dead letters")
    if as_json:
        echo_json({**pass_summary(result), "by_reason": dict(action.by_reason), "messages": action.summaries})
        return
    from alertq.table import render

    if action.summaries:
        rows = [
            [
                s["position"],
                (s["dead_at"] or "")[:19].replace("T", " "),
                s["reason"],
                s["channel"],
                s["notification_type"],
                s["host"],
                s["service"],
                s["attempt"],
                s["event_id"],
                s["last_error"],
            ]
            for s in action.summaries
        ]
        headers = [
            "#",
            "DEAD AT (UTC)",
            "REASON",
            "CHANNEL",
            "TYPE",
            "HOST",
            "SERVICE",
            "ATT",
            "EVENT ID",
            "LAST ERROR",
        ]
        click.echo(render(headers, rows))
    reasons = ", ".join(f"{r} {n}" for r, n in action.by_reason.most_common()) or "none"
    if kwargs.get("limit") and result.taken >= kwargs["limit"]:
        click.echo(f"first {result.taken} matches of {result.depth} dead letters (--limit; {reasons})", err=True)
    else:
        click.echo(f"{result.matched} of {result.depth} dead letters match ({reasons})", err=True)
    echo_notes(result)


with_filter_help(list_)


@dlq.command("show")
@click.argument("event_id", nargs=-1)
@filter_options
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts (body as text and base64).")
def show(event_id: tuple[str, ...], as_json: bool, **kwargs: Any) -> None:
    """Show dead letters in full: routing key, properties, every header and the body.

    \b
    Examples:
      alertq dlq show 5f0c2a1e-…                   # by event id (as many as you like)
      alertq dlq show --channel email --limit 1    # the oldest e-mail dead letter
    """
    from broker.dlq.actions import Collect

    kwargs["event_ids"] = tuple(kwargs.get("event_ids", ())) + event_id
    if kwargs.get("limit") is None:
        kwargs["limit"] = 10
    action = Collect(keep_letters=True)
    result = run_pass(action, kwargs, "show")
    fail_if_error(result, "cannot read the dead letters")
    if as_json:
        echo_json([_full(letter) for letter in action.letters])
    else:
        for letter in action.letters:
            click.echo(_render_full(letter))
    if not action.letters:
        click.echo(f"no dead letter matches (examined {result.examined})", err=True)
        if event_id:
            sys.exit(1)
    echo_notes(result)


with_filter_help(show)


def _full(letter: Any) -> dict[str, Any]:
    from broker.dlq.archive import PROPERTY_NAMES, encode_value

    props = {n: getattr(letter.properties, n) for n in PROPERTY_NAMES if getattr(letter.properties, n) is not None}
    return {
        **letter.summary(),
        "properties": props,
        "headers": {k: encode_value(v) for k, v in letter.headers.items()},
        "body": letter.body.decode("utf-8", "replace"),
        "body_b64": base64.b64encode(letter.body).decode("ascii"),
    }


def _render_full(letter: Any) -> str:
    full = _full(letter)
    lines = [f"── {full['event_id'] or '(no event id)'}  position {full['position']}"]
    for key in ("reason", "dead_at", "channel", "routing_key", "attempt", "replay_count", "last_error"):
        lines.append(f"{key:>14}: {full[key]}")
    lines.append("    properties: " + json.dumps(full["properties"], default=str))
    for name, value in full["headers"].items():
        lines.append(f"  header {name}: {json.dumps(value, default=str)}")
    event = letter.event
    body = json.dumps(event, indent=2, ensure_ascii=False) if event is not None else full["body"]
    lines.append("body:")
    lines.append(body)
    return "\n".join(lines) + "\n"


@dlq.command()
@filter_options
@click.option("--to-channel", help="Send to this channel's queue instead of the original one.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="At most this many messages per second.")
@click.option(
    "--window",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Unconfirmed copies in flight at most: more is faster, and more duplicates if the process is killed.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be replayed and where; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON for scripts.")
def replay(
    to_channel: str | None, rate: float | None, window: int, dry_run: bool, as_json: bool, **kwargs: Any
) -> None:
    """Send dead letters back to delivery, after you fixed what broke.

    Each matching message is published to exchange alertq.events with routing key
    retry.<channel>: that reaches the channel's queue alertq.notify.<channel> and not the
    escalator, which already saw the event when it was first sent. The body is unchanged; the
    dead-letter headers and the attempt count are removed, alertq-replayed-at is set and
    alertq-replay-count goes up. The dead letter is removed only after the broker confirmed
    the copy, so a crash or Ctrl-C loses nothing (at worst a message in flight is both
    replayed and still dead-lettered).

    \b
    Examples:
      alertq dlq replay --channel slack --reason permanent --dry-run
      alertq dlq replay --channel slack --reason permanent
      alertq dlq replay --reason unroutable --to-channel email --rate 20
      alertq dlq replay --event-id 5f0c2a1e-…
    """
    from broker.dlq.actions import Replay

    action = Replay(to_channel=to_channel, rate=rate, window=window, dry_run=dry_run)
    result = run_pass(action, kwargs, "replay")
    report = action.report
    summary = {
        **pass_summary(result),
        "dry_run": dry_run,
        "replayed": report.replayed,
        "would_replay": len(action.would_replay) if dry_run else 0,
        "unroutable": report.unroutable,
        "nacked": report.nacked,
        "not_replayable": report.not_replayable,
        "by_target": dict(report.by_target),
        "problems": dict(report.problems),
        "left_in_dead_letters": result.depth - result.acked,
        "error": result.error,
    }
    if dry_run and as_json:
        summary["messages"] = action.would_replay
    if as_json:
        echo_json(summary)
    else:
        if dry_run:
            from alertq.table import render

            if action.would_replay:
                rows = [
                    [m["position"], m["reason"], m["channel"], m["host"], m["service"], m["event_id"], m["target"]]
                    for m in action.would_replay
                ]
                click.echo(render(["#", "REASON", "CHANNEL", "HOST", "SERVICE", "EVENT ID", "WOULD GO TO"], rows))
            click.echo(
                f"dry run: would replay {len(action.would_replay)} of {result.depth} dead letters; nothing changed"
            )
        else:
            click.echo(
                f"replayed {report.replayed} of {result.matched} matching dead letters ({result.depth} examined)"
            )
        for where, count in report.by_target.items():
            click.echo(f"  {count:>7}  → {where}")
        for problem, count in report.problems.items():
            click.echo(f"  {count:>7}  left dead-lettered: {problem}", err=True)
    echo_notes(result)
    fail_if_error(result, "replay stopped")
    if report.unroutable or report.nacked or report.not_replayable:
        sys.exit(1)


with_filter_help(replay)


@dlq.command()
@filter_options
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed when stdin is not a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Summary as JSON for scripts.")
def purge(dry_run: bool, yes: bool, as_json: bool, **kwargs: Any) -> None:
    """Delete dead letters for good. Export them first if anyone may want them back.

    \b
    Examples:
      alertq dlq purge --reason invalid --dry-run
      alertq dlq purge --older-than 30d --yes          # e.g. from a cron job
      alertq dlq export --reason invalid -o bad.jsonl && alertq dlq purge --reason invalid -y
    """
    from broker.dlq.actions import Collect, Purge

    description = build_filter(kwargs).describe()
    if dry_run or not yes:
        counting = Collect()
        counted = run_pass(counting, kwargs, "count")
        fail_if_error(counted, "cannot read the dead letters")
        if dry_run:
            if as_json:
                echo_json(
                    {
                        **pass_summary(counted),
                        "dry_run": True,
                        "would_purge": counted.taken,
                        "by_reason": dict(counting.by_reason),
                    }
                )
            else:
                click.echo(f"dry run: would purge {counted.taken} of {counted.depth} dead letters ({description})")
            return
        if counted.taken == 0:
            click.echo(f"nothing to purge: no dead letter matches ({description})")
            return
        if not sys.stdin.isatty():
            raise click.ClickException("refusing to purge without --yes: stdin is not a terminal to confirm on")
        click.confirm(f"Purge {counted.taken} of {counted.depth} dead letters ({description})?", abort=True)
    action = Purge()
    result = run_pass(action, kwargs, "purge")
    if as_json:
        echo_json(
            {
                **pass_summary(result),
                "purged": action.purged,
                "by_reason": dict(action.by_reason),
                "error": result.error,
            }
        )
    else:
        click.echo(f"purged {action.purged} of {result.depth} dead letters ({description})")
    echo_notes(result)
    fail_if_error(result, "purge stopped")


with_filter_help(purge)


@dlq.command()
@filter_options
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.option("--remove", is_flag=True, help="Remove each exported message from alertq.dead once the file is synced.")
def export(output: Path | None, remove: bool, **kwargs: Any) -> None:
    """Write dead letters as JSON lines: body (base64), routing key, properties and headers.

    `alertq dlq import` puts such a file back byte for byte, on this broker or another one.
    Without --remove the dead letters stay where they are.

    \b
    Examples:
      alertq dlq export -o dead-$(date +%F).jsonl
      alertq dlq export --channel webhook --since 1d | jq -r .event_id
      alertq dlq export --older-than 30d --remove -o archive.jsonl   # move to a file
    """
    from broker.dlq.actions import Export

    out: IO[str]
    if output is None:
        out = sys.stdout
    else:
        try:
            out = output.open("w", encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(one_line(f"cannot write {output}: {exc.strerror or exc}")) from None
    try:
        action = Export(out, remove=remove)
        result = run_pass(action, kwargs, "export")
    finally:
        if out is not sys.stdout:
            out.close()
    verb = "exported and removed" if remove else "exported"
    click.echo(f"{verb} {action.exported} of {result.depth} dead letters to {output or 'stdout'}", err=True)
    echo_notes(result)
    fail_if_error(result, "export stopped")


with_filter_help(export)


@dlq.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--dry-run", is_flag=True, help="Check the file and count its records; publish nothing.")
def import_(file: IO[str], dry_run: bool) -> None:
    """Put exported dead letters back into alertq.dead, exactly as they were exported.

    The whole file is checked first; a bad line stops the import before anything is published.
    FILE may be - for stdin.

    \b
    Examples:
      alertq dlq import dead-2026-11-27.jsonl
      ssh old-mq alertq dlq export | alertq dlq import -     # move dead letters between brokers
    """
    from broker.dlq.archive import ArchiveError, loads
    from broker.dlq.importer import Importer

    try:
        records = [loads(line, number) for number, line in enumerate(file, start=1) if line.strip()]
    except ArchiveError as exc:
        raise click.ClickException(one_line(f"{file.name}: {exc}")) from None
    if dry_run:
        click.echo(f"dry run: {len(records)} dead letters in {file.name} are well-formed; nothing published")
        return
    settings = load_settings()
    result = Importer(settings.broker, records).run()
    click.echo(f"imported {result.confirmed} of {len(records)} dead letters into alertq.dead")
    if result.error:
        raise click.ClickException(one_line(f"import stopped: {result.error}"))
    if result.refused:
        raise click.ClickException(f"the broker refused {result.refused} dead letters (is the topology declared?)")
