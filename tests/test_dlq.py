"""`alertq dlq …` as an SRE runs it: real CLI processes against the real broker."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter

import pytest

from broker import names
from tests.conftest import run
from tests.support.amqp import depth, take
from tests.support.dead_letters import Spec, comparable, comparable_published, publish

CHANNELS = ("mattermost", "slack", "email")
REASONS = ("permanent", "max-attempts", "expired", "delivery-limit")


def mixed_specs(count: int) -> list[Spec]:
    """`count` dead letters, channels and reasons interleaved so matches are spread through the queue."""
    pattern = itertools.cycle(itertools.product(CHANNELS, REASONS))
    hosts = itertools.cycle(["web-01", "web-02", "db-01"])
    return [
        Spec(channel, reason, host=next(hosts)) for (channel, reason), _ in zip(pattern, range(count), strict=False)
    ]


def dlq(env, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return run(["alertq", "dlq", *args], env, **kwargs)


def notify_depths(url: str) -> dict[str, int]:
    return {c: depth(url, names.notify_queue(c)) for c in CHANNELS}


def test_replay_of_one_channel_and_reason_moves_exactly_those_and_keeps_the_rest_in_order(
    declared, amqp_url, alertq_env
):
    letters = publish(amqp_url, mixed_specs(1000))
    is_match = [key == "notify.slack" and _reason(props) == "permanent" for key, _, props in letters]
    expected_replayed = [letter for letter, m in zip(letters, is_match, strict=True) if m]
    expected_left = [letter for letter, m in zip(letters, is_match, strict=True) if not m]
    assert len(expected_replayed) == 1000 // 12 + (1 if 1000 % 12 > 5 else 0)

    result = dlq(alertq_env, "replay", "--channel", "slack", "--reason", "permanent")

    assert result.returncode == 0, result.stderr
    assert f"replayed {len(expected_replayed)} of {len(expected_replayed)}" in result.stdout
    replayed = take(amqp_url, names.notify_queue("slack"))
    assert [m.body for m in replayed] == [body for _, body, _ in expected_replayed]
    for message, (_, _, original) in zip(replayed, expected_replayed, strict=True):
        assert message.routing_key == "retry.slack"  # the channel queue only, not the escalator
        assert message.properties.message_id == original.message_id
        assert message.properties.content_type == "application/json"
        assert message.properties.delivery_mode == 2
        headers = message.headers
        assert not {names.HEADER_DEAD_REASON, names.HEADER_DEAD_AT, names.HEADER_LAST_ERROR} & set(headers)
        assert names.HEADER_ATTEMPT not in headers
        assert headers[names.HEADER_REPLAY_COUNT] == 1
        assert headers[names.HEADER_REPLAYED_AT].endswith("+00:00")
    assert depth(amqp_url, names.notify_queue("mattermost")) == 0
    assert depth(amqp_url, names.notify_queue("email")) == 0
    assert depth(amqp_url, names.ESCALATOR_QUEUE) == 0
    left = take(amqp_url, names.DEAD_QUEUE)
    assert [comparable(m) for m in left] == [comparable_published(letter) for letter in expected_left]


def test_dry_runs_change_nothing(declared, amqp_url, alertq_env):
    letters = publish(amqp_url, mixed_specs(120))

    replay = dlq(alertq_env, "replay", "--channel", "email", "--dry-run")
    purge = dlq(alertq_env, "purge", "--reason", "expired", "--dry-run", "--json")

    assert replay.returncode == 0, replay.stderr
    assert "dry run: would replay 40 of 120" in replay.stdout
    assert purge.returncode == 0, purge.stderr
    assert json.loads(purge.stdout)["would_purge"] == 30
    assert notify_depths(amqp_url) == dict.fromkeys(CHANNELS, 0)
    assert [comparable(m) for m in take(amqp_url, names.DEAD_QUEUE)] == [comparable_published(x) for x in letters]


def test_purge_with_a_filter_removes_only_the_matches(declared, amqp_url, alertq_env):
    letters = publish(amqp_url, mixed_specs(240))

    refused = dlq(alertq_env, "purge", "--reason", "delivery-limit", stdin=subprocess.DEVNULL)
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "--yes" in refused.stderr
    assert depth(amqp_url, names.DEAD_QUEUE) == 240

    purged = dlq(alertq_env, "purge", "--reason", "delivery-limit", "--host", "WEB-*", "--yes")

    assert purged.returncode == 0, purged.stderr
    gone = [x for x in letters if _reason(x[2]) == "delivery-limit" and b'"name": "web-' in x[1]]
    assert f"purged {len(gone)} of 240" in purged.stdout
    assert [comparable(m) for m in take(amqp_url, names.DEAD_QUEUE)] == [
        comparable_published(x) for x in letters if x not in gone
    ]


def test_export_purge_import_round_trips_bodies_and_headers(declared, amqp_url, alertq_env, tmp_path):
    letters = publish(amqp_url, mixed_specs(100))
    with_binary = publish(amqp_url, [Spec("slack", "invalid")])  # plus a body that is not JSON
    letters += with_binary
    archive = tmp_path / "dead.jsonl"

    exported = dlq(alertq_env, "export", "-o", str(archive))
    purged = dlq(alertq_env, "purge", "--yes")
    assert depth(amqp_url, names.DEAD_QUEUE) == 0
    imported = dlq(alertq_env, "import", str(archive))

    assert exported.returncode == 0, exported.stderr
    assert purged.returncode == 0, purged.stderr
    assert imported.returncode == 0, imported.stderr
    assert "imported 101 of 101" in imported.stdout
    assert len(archive.read_text().splitlines()) == 101
    back = take(amqp_url, names.DEAD_QUEUE)
    assert [comparable(m) for m in back] == [comparable_published(x) for x in letters]
    x_death = back[3].headers["x-death"][0]  # the broker's own dead-letter header, types intact
    assert x_death["reason"] == "delivery_limit"
    assert isinstance(x_death["time"], type(letters[3][2].headers["x-death"][0]["time"]))


def test_import_checks_the_whole_file_before_publishing(declared, amqp_url, alertq_env, tmp_path):
    publish(amqp_url, mixed_specs(3))
    archive = tmp_path / "dead.jsonl"
    assert dlq(alertq_env, "export", "-o", str(archive)).returncode == 0
    archive.write_text(archive.read_text() + "{not json\n")

    result = dlq(alertq_env, "import", str(archive))

    assert result.returncode == 1
    assert "line 4" in result.stderr and result.stderr.strip().count("\n") == 0
    assert depth(amqp_url, names.DEAD_QUEUE) == 3


def test_replay_to_another_channel_and_letters_without_a_channel(declared, amqp_url, alertq_env):
    publish(amqp_url, [Spec("slack", "unroutable"), Spec("slack", "permanent")])
    _publish_raw_invalid(amqp_url)

    plain = dlq(alertq_env, "replay", "--reason", "invalid")
    assert plain.returncode == 1  # it names no channel: left where it is, and said so
    assert "--to-channel" in plain.stderr
    assert depth(amqp_url, names.DEAD_QUEUE) == 3

    moved = dlq(alertq_env, "replay", "--reason", "invalid", "--reason", "unroutable", "--to-channel", "email")
    assert moved.returncode == 0, moved.stderr
    in_email = take(amqp_url, names.notify_queue("email"))
    assert len(in_email) == 2 and b"{broken" in {m.body for m in in_email}
    assert {m.routing_key for m in in_email} == {"retry.email"}
    assert depth(amqp_url, names.DEAD_QUEUE) == 1


def test_list_filters_and_json(declared, amqp_url, alertq_env):
    letters = publish(
        amqp_url,
        [
            Spec(
                "slack",
                "permanent",
                host="db-01",
                service="MySQL",
                dead_ago=pytest.importorskip("datetime").timedelta(days=3),
            ),
            Spec("slack", "permanent", host="web-01", notification_type="RECOVERY"),
            Spec("email", "expired", host="web-02", service=None),
        ],
    )
    old = json.loads(dlq(alertq_env, "list", "--older-than", "2d", "--json").stdout)
    recent = json.loads(dlq(alertq_env, "list", "--since", "1h", "--host", "web-*", "--json").stdout)
    by_type = json.loads(dlq(alertq_env, "list", "--type", "recovery", "--json").stdout)
    by_service = json.loads(dlq(alertq_env, "list", "--service", "mysql", "--json").stdout)
    by_id = json.loads(dlq(alertq_env, "list", "--event-id", letters[2][2].message_id, "--json").stdout)
    table = dlq(alertq_env, "list")

    assert [m["host"] for m in old["messages"]] == ["DB-01"]
    assert [m["host"] for m in recent["messages"]] == ["WEB-01", "WEB-02"]
    assert [m["notification_type"] for m in by_type["messages"]] == ["RECOVERY"]
    assert [m["service"] for m in by_service["messages"]] == ["MySQL"]
    assert [m["reason"] for m in by_id["messages"]] == ["expired"]
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["#", "DEAD", "AT"]
    assert len(table.stdout.splitlines()) == 4
    bad = dlq(alertq_env, "list", "--since", "yesterday")
    assert bad.returncode == 2 and "yesterday" in bad.stderr
    assert depth(amqp_url, names.DEAD_QUEUE) == 3


def test_show_prints_one_dead_letter_in_full(declared, amqp_url, alertq_env):
    letters = publish(amqp_url, [Spec("slack", "permanent"), Spec("email", "delivery-limit")])
    event_id = letters[1][2].message_id

    shown = dlq(alertq_env, "show", event_id)
    as_json = json.loads(dlq(alertq_env, "show", event_id, "--json").stdout)

    assert shown.returncode == 0, shown.stderr
    assert "delivery-limit" in shown.stdout and "x-death" in shown.stdout and '"notification_type"' in shown.stdout
    assert as_json[0]["body"].encode() == letters[1][1]
    assert dlq(alertq_env, "show", "no-such-event").returncode == 1


@pytest.mark.slow
def test_sigkill_halfway_through_a_replay_loses_nothing(declared, amqp_url, alertq_env):
    total = 5000
    letters = publish(amqp_url, mixed_specs(total), confirmed=False)
    deadline = time.monotonic() + 120
    while depth(amqp_url, names.DEAD_QUEUE) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    assert depth(amqp_url, names.DEAD_QUEUE) == total

    process = subprocess.Popen(
        ["alertq", "dlq", "replay", "--rate", "2000"], env=alertq_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    while sum(notify_depths(amqp_url).values()) < total // 2 and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "replay finished before it could be killed"

    # The broker notices the dropped connection and returns its unacked messages to alertq.dead; on a
    # loaded machine that takes a while, so wait for the count to come back (lost ones never would).
    deadline = time.monotonic() + 60
    while sum(notify_depths(amqp_url).values()) + depth(amqp_url, names.DEAD_QUEUE) < total:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    delivered = [m.properties.message_id for c in CHANNELS for m in take(amqp_url, names.notify_queue(c))]
    still_dead = [m.properties.message_id for m in take(amqp_url, names.DEAD_QUEUE)]
    everything = {props.message_id for _, _, props in letters}
    counts = Counter(delivered + still_dead)
    duplicates = sum(1 for n in counts.values() if n > 1)
    print(
        f"\nSIGKILL mid-replay: {len(delivered)} back in delivery, {len(still_dead)} still dead-lettered, "
        f"{duplicates} in both (in flight when killed), {len(everything - set(counts))} lost"
    )
    assert set(counts) == everything  # none lost
    assert len(delivered) >= total // 2
    assert duplicates <= 1000  # at most one window of unacked-but-confirmed copies
    assert len(set(delivered)) == len(delivered)  # a replayed copy is never published twice


def _reason(props) -> str:
    headers = props.headers or {}
    return str(headers.get(names.HEADER_DEAD_REASON) or headers["x-first-death-reason"].replace("_", "-"))


def _publish_raw_invalid(url: str) -> None:
    from broker.publisher import ConfirmedPublisher, json_properties
    from tests.support.amqp import connect

    connection = connect(url)
    props = json_properties(
        "", {names.HEADER_DEAD_REASON: "invalid", names.HEADER_DEAD_AT: "2026-01-01T00:00:00+00:00"}
    )
    ConfirmedPublisher(connection.channel()).publish(names.DEAD_EXCHANGE, "invalid.spool", b"{broken", props)
    connection.close()


def test_sigterm_stops_a_replay_cleanly_without_duplicates(declared, amqp_url, alertq_env):
    letters = publish(amqp_url, mixed_specs(600))
    process = subprocess.Popen(
        ["alertq", "dlq", "replay", "--rate", "100"],
        env=alertq_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while sum(notify_depths(amqp_url).values()) < 50 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert "interrupted" in err
    delivered = [m.properties.message_id for c in CHANNELS for m in take(amqp_url, names.notify_queue(c))]
    still_dead = take(amqp_url, names.DEAD_QUEUE)
    assert f"replayed {len(delivered)} of" in out
    assert 50 <= len(delivered) < 600
    assert sorted(delivered + [m.properties.message_id for m in still_dead]) == sorted(
        p.message_id for _, _, p in letters
    )
    # what was not replayed is still there in its order
    assert [m.properties.message_id for m in still_dead] == [
        p.message_id for _, _, p in letters if p.message_id not in set(delivered)
    ]


def test_a_missing_dead_letter_queue_is_one_clear_line(amqp_url, alertq_env):
    result = dlq(alertq_env, "list")
    assert result.returncode == 1
    assert "alertq topology declare" in result.stderr and result.stderr.strip().count("\n") == 0


def _purge_on_a_terminal(env, answer: str) -> subprocess.CompletedProcess[str]:
    """Run purge with a pseudo-terminal as stdin, as an SRE at a shell would, answering the prompt."""
    primary, secondary = os.openpty()
    try:
        process = subprocess.Popen(
            ["alertq", "dlq", "purge", "--channel", "email"],
            env=env,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(primary, answer.encode() + b"\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(primary)
        os.close(secondary)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_purge_asks_on_a_terminal(declared, amqp_url, alertq_env):
    publish(amqp_url, mixed_specs(24))

    declined = _purge_on_a_terminal(alertq_env, "n")
    assert declined.returncode == 1
    assert "Purge 8 of 24 dead letters (channel=email)?" in declined.stdout
    assert depth(amqp_url, names.DEAD_QUEUE) == 24

    accepted = _purge_on_a_terminal(alertq_env, "y")
    assert accepted.returncode == 0, accepted.stderr
    assert "purged 8 of 24" in accepted.stdout
    assert depth(amqp_url, names.DEAD_QUEUE) == 16


def test_every_dlq_subcommand_has_help_with_examples(alertq_env):
    top = dlq(alertq_env, "--help")
    subcommands = re.findall(r"^  ([a-z-]+)\s", top.stdout.split("Commands:")[1], re.M)
    assert set(subcommands) == {"list", "show", "replay", "purge", "export", "import"}
    for subcommand in subcommands:
        result = dlq(alertq_env, subcommand, "--help")
        assert result.returncode == 0, subcommand
        examples = result.stdout.split("Examples:", 1)
        assert len(examples) == 2, f"alertq dlq {subcommand} --help has no examples"
        assert f"alertq dlq {subcommand}" in examples[1], subcommand
