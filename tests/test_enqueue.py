"""alertq-enqueue as the monitoring core runs it: real processes, the real broker."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker import names
from schemas.alert import KNOWN_NOTIFICATION_TYPES, AlertEvent, parse_alert
from schemas.settings import Settings
from tests.conftest import run
from tests.support import amqp
from tests.support.workers import Endpoint

HOST_FLAGS = [
    "--type",
    "Host",
    "--hostuuid",
    "c36b8048-93ce-4385-ac19-ab5c90574b77",
    "--state",
    "1",
    "--output",
    "CRITICAL - 10.0.0.1: rta nan, lost 100%",
]
SERVICE_FLAGS = [
    "--type",
    "Service",
    "--hostuuid",
    "c36b8048-93ce-4385-ac19-ab5c90574b77",
    "--serviceuuid",
    "74fd8f59-1348-4e16-85f0-4a5c57c7dd62",
    "--state",
    "2",
    "--output",
    "DISK CRITICAL - free space: / 120 MB (1%)",
]


def enqueue(env: dict[str, str], *args: str, stdin: bytes | None = None) -> tuple[int, str]:
    import subprocess

    result = subprocess.run(
        ["alertq-enqueue", *args], env=env, input=stdin, capture_output=True, timeout=60, check=False
    )
    return result.returncode, result.stderr.decode()


@pytest.mark.parametrize("notification_type", [*KNOWN_NOTIFICATION_TYPES, "SOMETHINGNEW"])
@pytest.mark.parametrize("kind", ["host", "service"])
def test_every_notification_type_arrives_with_every_field(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, kind: str, notification_type: str
) -> None:
    flags = HOST_FLAGS if kind == "host" else SERVICE_FLAGS
    ack = (
        ["--ackauthor", "jdoe", "--ackcomment", "on it"]
        if notification_type == "ACKNOWLEDGEMENT"
        else ["--ackauthor", "", "--ackcomment", ""]
    )
    before = datetime.now(UTC)
    code, err = enqueue(
        alertq_env,
        "--channel",
        "mattermost",
        "--notificationtype",
        notification_type,
        *flags,
        *ack,
        "--hostaddress",
        "10.0.0.1",
        "--host-display-name",
        "web01",
        *(["--service-display-name", "Disk /"] if kind == "service" else []),
        "--contact",
        "oncall",
        "--contact-email",
        "oncall@example.org",
        "--notification-number",
        "3",
        "--long-output",
        "line1\nline2",
        "--problem-id",
        "4711",
    )
    assert (code, err) == (0, "")
    [message] = amqp.take(amqp_url, names.notify_queue("mattermost"), 1)
    event = AlertEvent.model_validate_json(message.body)
    assert message.routing_key == "notify.mattermost"
    assert message.properties.message_id == event.event_id
    assert uuid.UUID(event.event_id).version == 4
    assert message.properties.content_type == "application/json"
    assert message.properties.delivery_mode == 2
    assert event.schema_ == "alertq.alert/1"
    assert event.channel == "mattermost"
    assert event.kind == kind
    assert event.notification_type == notification_type
    assert event.host.id == event.host.name == "c36b8048-93ce-4385-ac19-ab5c90574b77"
    assert event.host.display_name == "web01"
    assert event.host.address == "10.0.0.1"
    if kind == "service":
        assert event.service is not None
        assert event.service.id == "74fd8f59-1348-4e16-85f0-4a5c57c7dd62"
        assert event.service.display_name == "Disk /"
        assert event.state == 2 and event.state_name == "CRITICAL"
        assert event.output == "DISK CRITICAL - free space: / 120 MB (1%)"
    else:
        assert event.service is None
        assert event.state == 1 and event.state_name == "DOWN"
        assert event.output == "CRITICAL - 10.0.0.1: rta nan, lost 100%"
    assert event.long_output == "line1\nline2"
    if notification_type == "ACKNOWLEDGEMENT":
        assert event.ack is not None and (event.ack.author, event.ack.comment) == ("jdoe", "on it")
    else:
        assert event.ack is None
    assert event.notification_number == 3
    assert event.problem_id == "4711"
    assert event.contact is not None and event.contact.email == "oncall@example.org"
    assert event.contact.name == "oncall" and event.contact.pager is None
    assert event.escalation is None
    assert event.source.producer_host == os.uname().nodename
    assert before <= event.created_at <= datetime.now(UTC)
    # The escalator gets a copy of every first delivery.
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 1


def test_slack_flag_set_is_accepted_unchanged(declared: Settings, alertq_env: dict[str, str], amqp_url: str) -> None:
    # openITCOCKPIT's SlackModule.SlackNotification service command, binary replaced, --channel added.
    code, err = enqueue(
        alertq_env,
        "--channel",
        "slack",
        "--type",
        "Service",
        "--notificationtype",
        "RECOVERY",
        "--hostname",
        "web01",
        "--hostaddress",
        "192.0.2.7",
        "--hoststate",
        "0",
        "--servicedesc",
        "HTTP",
        "--servicestate",
        "0",
        "--output",
        "HTTP OK: 200",
    )
    assert (code, err) == (0, "")
    [message] = amqp.take(amqp_url, names.notify_queue("slack"), 1)
    event = AlertEvent.model_validate_json(message.body)
    assert (event.host.name, event.host.address, event.service and event.service.name) == (
        "web01",
        "192.0.2.7",
        "HTTP",
    )
    assert (event.kind, event.state, event.notification_type) == ("service", 0, "RECOVERY")


def test_channel_twice_gives_two_messages(declared: Settings, alertq_env: dict[str, str], amqp_url: str) -> None:
    code, _ = enqueue(
        alertq_env,
        "--channel",
        "mattermost",
        "--channel",
        "email",
        "--notificationtype",
        "PROBLEM",
        *SERVICE_FLAGS,
        "--escalation-policy",
        "db-team",
        "--timestamp",
        "1795800000",
    )
    assert code == 0
    [mm] = amqp.take(amqp_url, names.notify_queue("mattermost"), 1)
    [mail] = amqp.take(amqp_url, names.notify_queue("email"), 1)
    a, b = AlertEvent.model_validate_json(mm.body), AlertEvent.model_validate_json(mail.body)
    assert (a.channel, b.channel) == ("mattermost", "email")
    assert a.event_id != b.event_id
    assert a.model_dump(exclude={"event_id", "channel"}) == b.model_dump(exclude={"event_id", "channel"})
    assert a.escalation is not None and (a.escalation.policy, a.escalation.step) == ("db-team", 0)
    assert a.created_at == datetime.fromtimestamp(1795800000, UTC)


VALID_HOST_CALL = {
    "--channel": "mattermost",
    "--type": "Host",
    "--notificationtype": "PROBLEM",
    "--hostuuid": "h",
    "--state": "1",
}


def call(drop: str = "", **changes: str) -> list[str]:
    """A valid host invocation with one flag dropped or changed (`changes` keys: flag without dashes)."""
    flags = {k: v for k, v in VALID_HOST_CALL.items() if k != drop}
    flags.update({f"--{k.replace('_', '-')}": v for k, v in changes.items()})
    return [part for pair in flags.items() for part in pair]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (call(drop="--channel"), "--channel"),
        (call(drop="--type"), "--type"),
        (call(type="Router"), "--type"),
        (call(drop="--notificationtype"), "--notificationtype"),
        (call(drop="--hostuuid"), "--hostuuid"),
        (call(type="Service"), "--serviceuuid"),
        (call(drop="--state"), "--state"),
        (call(channel="Matter Most"), "--channel"),
        (call(colour="red"), "--colour"),
        ([*call(), "--output"], "--output"),
        ([*call(), "--state", "2"], "--state"),
    ],
)
def test_bad_invocation_exits_2_with_one_line_naming_the_flag(
    alertq_env: dict[str, str], tmp_path: Path, args: list[str], flag: str
) -> None:
    code, err = enqueue(alertq_env, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("alertq-enqueue: error:")
    assert flag in err
    assert not list((tmp_path / "spool").glob("*.json")), "a refused call stores nothing"


def test_odd_output_is_kept_as_text(declared: Settings, alertq_env: dict[str, str], amqp_url: str) -> None:
    weird = b"caf\xc3\xa9 \xff\xfe broken; $(rm -rf /) `id` && echo $HOME | tee >out 'q' \"dq\" \\ \t*?[]"
    big = ("x" * 100 + "\n") * 1200  # 121 KiB: over the cut, under Linux's 128 KiB per argument
    code, _ = enqueue(
        alertq_env,
        "--channel",
        "webhook",
        "--notificationtype",
        "CUSTOM",
        *HOST_FLAGS[:-2],
        "--output",
        os.fsdecode(weird),
        "--long-output",
        big,
    )
    assert code == 0
    [message] = amqp.take(amqp_url, names.notify_queue("webhook"), 1)
    event = AlertEvent.model_validate_json(message.body)
    assert event.output == weird.decode("utf-8", "replace")
    assert "café \ufffd\ufffd broken; $(rm -rf /) `id`" in event.output
    assert len(event.long_output.encode()) == 64 * 1024
    kept = event.long_output.index("\n[alertq: cut")
    assert event.long_output[:kept] == big[:kept]
    # Every byte not shown is counted, including the room the marker itself takes.
    assert event.long_output.endswith(f"\n[alertq: cut at 64 KiB, {len(big) - kept} more bytes dropped]")


def test_one_mebibyte_of_output_from_stdin_is_cut_at_64_kib(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str
) -> None:
    # A single argument cannot exceed 128 KiB on Linux, so big output comes on standard input.
    mebibyte = ("é" * 511 + "x\n").encode() * 1024
    assert len(mebibyte) == 1024 * 1024
    code, _ = enqueue(
        alertq_env,
        "--channel",
        "webhook",
        "--notificationtype",
        "PROBLEM",
        *HOST_FLAGS[:-2],
        "--output",
        "-",
        stdin=mebibyte,
    )
    assert code == 0
    [message] = amqp.take(amqp_url, names.notify_queue("webhook"), 1)
    output = AlertEvent.model_validate_json(message.body).output
    assert len(output.encode()) <= 64 * 1024
    assert "\ufffd" not in output, "the cut falls on a character boundary"
    assert output.startswith(mebibyte[:60000].decode("utf-8", "ignore"))
    assert "more bytes dropped]" in output


def test_twenty_megabytes_on_stdin_the_marker_counts_every_dropped_byte(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str
) -> None:
    twenty_megabytes = b"0123456789abcde\n" * (20_000_000 // 16)
    code, _ = enqueue(
        alertq_env,
        "--channel",
        "webhook",
        "--notificationtype",
        "PROBLEM",
        *HOST_FLAGS[:-2],
        "--output",
        "-",
        stdin=twenty_megabytes,
    )
    assert code == 0
    [message] = amqp.take(amqp_url, names.notify_queue("webhook"), 1)
    output = AlertEvent.model_validate_json(message.body).output
    kept = output.index("\n[alertq: cut")
    assert output[:kept].encode() == twenty_megabytes[:kept]
    assert output.endswith(f"[alertq: cut at 64 KiB, {20_000_000 - kept} more bytes dropped]")


def test_values_that_only_describe_the_alert_never_cost_it(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str
) -> None:
    """A state, time or number the core got wrong: the alert goes out, with one warning line for each."""
    code, err = enqueue(
        alertq_env,
        *call(state="$HOSTSTATEID$", timestamp="inf", notification_number="three", problem_id="$HOSTPROBLEMID$"),
    )
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 4 and all(line.startswith("alertq-enqueue: warning: ") for line in lines)
    for flag in ("--state", "--timestamp", "--notification-number", "--problem-id"):
        assert sum(f"warning: {flag}: " in line for line in lines) == 1, flag
    [message] = amqp.take(amqp_url, names.notify_queue("mattermost"), 1)
    event = AlertEvent.model_validate_json(message.body)
    assert (event.state_name, event.notification_number, event.problem_id) == ("DOWN", None, None)


def test_latin1_names_travel_through_relay_worker_and_dead_letters_as_valid_text(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, hook: Endpoint, start_worker: Any, tmp_path: Path
) -> None:
    """A core with Latin-1 object names: its bytes are replaced at the door, so the relay, the broker, the
    worker, the dead letters and the endpoint only ever see valid UTF-8 (no surrogate, no stray byte)."""
    import subprocess

    from producer import spool
    from tests.support.workers import webhook_worker_env

    start_worker(webhook_worker_env(alertq_env, hook))
    with open(tmp_path / "relay.log", "wb") as relay_log:
        relay = subprocess.Popen(["alertq", "relay"], env=alertq_env, stdout=relay_log, stderr=relay_log)
    try:
        deadline = time.monotonic() + 30
        while not spool.relay_alive(alertq_env["ALERTQ_SPOOL__DIR"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Raw bytes in argv, as the core execs the command: \xe9 is Latin-1 é, not UTF-8.
        result = subprocess.run(
            [
                b"alertq-enqueue",
                b"--channel",
                b"webhook",
                b"--channel",
                b"pager",  # nobody consumes it: the relay dead-letters it as unroutable
                b"--type",
                b"Service",
                b"--notificationtype",
                b"PROBLEM",
                b"--hostuuid",
                b"caf\xe9-db01",
                b"--serviceuuid",
                b"Disque \xe9tat",
                b"--state",
                b"2",
                b"--output",
                b"\xe9chec: disque plein",
                b"--contact",
                b"Ren\xe9",
                b"--core",
                b"naemon-\xff",
            ],
            env=alertq_env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert (result.returncode, result.stderr) == (0, b"")

        assert hook.wait_for(1) == 1
        body = hook.hits[0].body
        delivered = parse_alert(body)
        assert (delivered.host.id, delivered.output) == ("caf\ufffd-db01", "\ufffdchec: disque plein")
        assert delivered.service is not None and delivered.service.id == "Disque \ufffdtat"
        assert delivered.contact is not None and delivered.contact.name == "Ren\ufffd"
        assert delivered.source.core == "naemon-\ufffd"
        assert_valid_text(body)

        listed = run(["alertq", "dlq", "list", "--host", "caf*", "--json"], alertq_env)
        assert listed.returncode == 0, listed.stderr
        [letter] = json.loads(listed.stdout)["messages"]
        shown = run(["alertq", "dlq", "show", letter["event_id"]], alertq_env)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
        assert "unroutable" in shown.stdout and '"id": "caf\ufffd-db01"' in shown.stdout
        # Sent on to a channel that works, it arrives like the first one.
        replayed = run(["alertq", "dlq", "replay", "--host", "caf*", "--to-channel", "webhook", "--json"], alertq_env)
        assert replayed.returncode == 0 and json.loads(replayed.stdout)["replayed"] == 1, replayed.stderr
        assert hook.wait_for(2) == 2
        again = hook.hits[1].body
        assert_valid_text(again)
        assert parse_alert(again).host.id == "caf\ufffd-db01"
    finally:
        relay.terminate()
        relay.wait(30)
    assert "Traceback" not in (tmp_path / "relay.log").read_text(errors="replace")


def assert_valid_text(body: bytes) -> None:
    """Strict UTF-8 JSON with no surrogate anywhere, neither as a character nor as a \\u escape."""
    text = body.decode("utf-8")
    assert not re.search(r"\\ud[89a-f][0-9a-f]{2}", text, re.IGNORECASE)

    def walk(value: object) -> None:
        if isinstance(value, str):
            assert not any("\ud800" <= ch <= "\udfff" for ch in value), value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(text))


def test_broker_down_keeps_the_event_and_warns_without_secrets(alertq_env: dict[str, str], tmp_path: Path) -> None:
    from tests.support.rabbit import free_port

    env = {**alertq_env, "ALERTQ_BROKER__URLS": f"amqp://alertq:s3cr3t-pw@127.0.0.1:{free_port()}/"}
    code, err = enqueue(env, "--channel", "mattermost", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    assert code == 0
    assert err.count("\n") == 1 and "warning: broker unreachable" in err
    assert "s3cr3t-pw" not in err
    [spooled] = (tmp_path / "spool").glob("*.json")
    event = AlertEvent.model_validate_json(spooled.read_bytes())
    assert event.notification_type == "PROBLEM"


def test_nothing_stored_anywhere_exits_1(alertq_env: dict[str, str], tmp_path: Path) -> None:
    from tests.support.rabbit import free_port

    (tmp_path / "not-a-dir").write_text("")
    env = {
        **alertq_env,
        "ALERTQ_BROKER__URLS": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        "ALERTQ_SPOOL__DIR": str(tmp_path / "not-a-dir" / "spool"),
    }
    code, err = enqueue(env, "--channel", "mattermost", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    assert code == 1
    assert err.count("\n") == 1 and "event not stored" in err


def test_unwritable_spool_falls_back_to_direct_publish(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    env = {**alertq_env, "ALERTQ_SPOOL__DIR": str(tmp_path / "not-a-dir" / "spool")}
    code, err = enqueue(env, "--channel", "mattermost", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    assert code == 0 and "published directly" in err
    assert len(amqp.take(amqp_url, names.notify_queue("mattermost"), 1)) == 1


def test_unknown_channel_is_dead_lettered_not_lost(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str
) -> None:
    code, err = enqueue(alertq_env, "--channel", "mattermots", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    assert code == 0
    assert "dead-lettered as unroutable" in err
    [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, 1)
    assert dead.headers[names.HEADER_DEAD_REASON] == "unroutable"
    assert dead.routing_key == "notify.mattermots"
    assert AlertEvent.model_validate_json(dead.body).channel == "mattermots"
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 0


def test_live_relay_gets_the_event_from_the_spool(alertq_env: dict[str, str], tmp_path: Path) -> None:
    from producer import spool

    spool_dir = str(tmp_path / "spool")
    lock = spool.RelayLock(spool_dir)
    assert lock.try_acquire()
    try:
        code, err = enqueue(alertq_env, "--channel", "mattermost", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    finally:
        lock.release()
    assert (code, err) == (0, "")
    [spooled] = spool.pending(spool_dir)
    assert json.loads((tmp_path / "spool" / spooled).read_bytes())["channel"] == "mattermost"


def test_help_teaches(alertq_env: dict[str, str]) -> None:
    result = run(["alertq-enqueue", "--help"], alertq_env)
    assert result.returncode == 0
    for flag in ("--hostuuid", "--servicedesc", "--channel", "--escalation-policy", "--problem-id", "Exit status"):
        assert flag in result.stdout
    # What becomes of values that describe the alert but cannot be used.
    words = " ".join(result.stdout.split())
    for decision in (
        "becomes the time of receipt",
        "is sent as UNKNOWN, for a host as DOWN",
        "in a RECOVERY as OK or UP",
        "is left out",
    ):
        assert decision in words


def test_broken_config_file_does_not_stop_an_event_for_a_live_relay(alertq_env: dict[str, str], tmp_path: Path) -> None:
    # The spool dir comes from the environment, so the file is not even read: a relay publishes the event.
    from producer import spool

    (tmp_path / "broken.toml").write_text("[broker\nurls = \n")
    env = {**alertq_env, "ALERTQ_CONFIG": str(tmp_path / "broken.toml")}
    lock = spool.RelayLock(env["ALERTQ_SPOOL__DIR"])
    assert lock.try_acquire()
    try:
        code, err = enqueue(env, "--channel", "mattermost", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    finally:
        lock.release()
    assert (code, err) == (0, "")
    assert len(spool.pending(env["ALERTQ_SPOOL__DIR"])) == 1


def test_broken_config_file_without_relay_exits_2_and_keeps_the_event(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "broken.toml").write_text("[broker\nurls = \n")
    env = {**alertq_env, "ALERTQ_CONFIG": str(tmp_path / "broken.toml")}
    code, err = enqueue(env, "--channel", "mattermost", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    assert code == 2
    assert err.count("\n") == 1 and "cannot read config file" in err and "kept in spool" in err
    [spooled] = (tmp_path / "spool").glob("*.json")
    assert AlertEvent.model_validate_json(spooled.read_bytes()).notification_type == "PROBLEM"


def test_spool_dir_from_the_config_file(alertq_env: dict[str, str], tmp_path: Path) -> None:
    from producer import spool

    spool_dir = tmp_path / "spool-from-toml"
    (tmp_path / "alertq.toml").write_text(f"[spool]\ndir = {json.dumps(str(spool_dir))}\n")
    env = {k: v for k, v in alertq_env.items() if k != "ALERTQ_SPOOL__DIR"}
    lock = spool.RelayLock(str(spool_dir))
    assert lock.try_acquire()
    try:
        code, err = enqueue(env, "--channel", "mattermost", "--notificationtype", "PROBLEM", *SERVICE_FLAGS)
    finally:
        lock.release()
    assert (code, err) == (0, "")
    assert len(spool.pending(str(spool_dir))) == 1


def test_relay_path_imports_only_the_standard_library(alertq_env: dict[str, str], tmp_path: Path) -> None:
    """In an alert storm the core forks thousands of these: pika, pydantic & co. stay out of the relay path."""
    import subprocess
    import sys

    from producer import spool

    lock = spool.RelayLock(str(tmp_path / "spool"))
    assert lock.try_acquire()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                "import sys; from producer.enqueue import main; sys.exit(main())",
                "--channel",
                "webhook",
                *HOST_FLAGS,
                "--notificationtype",
                "PROBLEM",
            ],
            env=alertq_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        lock.release()
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert imported, "importtime reported nothing"
    assert not imported & {"pika", "pydantic", "pydantic_settings", "structlog", "requests", "tenacity", "click"}


def test_the_installed_command_reaches_a_live_relay_without_json_re_tomllib_or_datetime(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    """The production path: the installed `alertq-enqueue` script, the spool dir from an alertq.toml that
    has been in place a while (read back from the settings cache after the first call). Each of these
    modules would cost the command a good part of all its work in a storm (tests/perf)."""
    import subprocess
    import sys

    from producer import spool

    spool_dir = tmp_path / "spool"
    config = tmp_path / "alertq.toml"
    config.write_text(f"[spool]\ndir = {json.dumps(str(spool_dir))}\n")
    hour_ago = time.time() - 3600
    os.utime(config, (hour_ago, hour_ago))
    env = {k: v for k, v in alertq_env.items() if k != "ALERTQ_SPOOL__DIR"}
    script = str(Path(sys.executable).parent / "alertq-enqueue")
    argv = [sys.executable, "-X", "importtime", script, "--config", str(config), "--channel", "webhook"]
    # A timestamp that is no time: the warning line must get out although the command skips the clean-up.
    argv += [*HOST_FLAGS, "--notificationtype", "PROBLEM", "--timestamp", "86400"]
    lock = spool.RelayLock(str(spool_dir))
    assert lock.try_acquire()
    try:
        runs = [subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False) for _ in "12"]
    finally:
        lock.release()
    for result in runs:
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
        assert warnings == [
            "alertq-enqueue: warning: --timestamp: '86400' is not a time between 2000 and a day from now; "
            "the time of receipt is used"
        ]
    assert len(spool.pending(str(spool_dir))) == 2
    imported = {line.split("|")[-1].strip() for line in runs[1].stderr.splitlines() if "|" in line}
    assert {"producer.enqueue", "producer.liteconfig"} <= imported
    assert not imported & {"json", "re", "tomllib", "datetime", "typing", "enum", "pika", "pydantic"}
