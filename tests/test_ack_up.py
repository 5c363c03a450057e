"""`alertq up` and acknowledgements: configured, a click reaches the core's command file; with nothing
configured, `alertq up` runs the whole loop against its demo core and demo escalation."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests

from schemas.ack_token import sign_incident
from tests.support.ack_processes import SIGNING_SECRET
from tests.support.rabbit import free_port
from tests.support.up_stack import Stack, enqueue_readme_example, fresh_up, has_ack_button, text


def test_alertq_up_runs_listener_and_forwarder_and_a_click_lands_in_the_command_file(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    fifo = tmp_path / "nagios.cmd"
    os.mkfifo(fifo)
    received: list[bytes] = []
    stop = threading.Event()

    def core_reading() -> None:  # stands in for the core: keeps the FIFO open for reading
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while not stop.is_set():
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    chunk = b""
                if chunk:
                    received.append(chunk)
                time.sleep(0.05)
        finally:
            os.close(fd)

    reader = threading.Thread(target=core_reading, daemon=True)
    reader.start()
    port = free_port()
    env = {
        **alertq_env,
        "ALERTQ_SINK__HTTP_PORT": str(free_port()),
        "ALERTQ_SINK__SMTP_PORT": str(free_port()),
        "ALERTQ_ACK__SIGNING_SECRET": SIGNING_SECRET,
        "ALERTQ_ACK_LISTENER__PORT": str(port),
        "ALERTQ_ACK_TARGET__COMMAND_FILE": str(fifo),
    }
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(["alertq", "up"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        button = sign_incident(
            SIGNING_SECRET, host_id="web01", service_id="disk", event_id="e", now=time.time(), ttl=60
        )
        click = {"user_name": "jdoe", "context": {"token": button}}
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/mattermost/actions", json=click, timeout=5)
                if answer.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, log.read_text()[-3000:]
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        up.terminate()
        up.wait(60)
        stop.set()
        reader.join(5)
    [line] = b"".join(received).decode().splitlines()
    assert line.endswith(
        "] ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;jdoe;Acknowledged in Mattermost by jdoe via alertq"
    )
    assert up.returncode == 0


def roots(stack: Stack, channel: str) -> list[dict[str, Any]]:
    return [m for m in stack.messages() if m["channel"] == channel and m["api"] and m["api"]["root"] is None]


def thread_of(stack: Stack, root: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in stack.messages() if m["api"] and m["api"]["root"] == root["id"]]


def startup_table(output: str) -> dict[str, str]:
    """`alertq up`'s first lines: one per part, `  <name>  <where it listens or what it talks to>`."""
    rows = [line.split(None, 1) for line in output.splitlines() if line.startswith("  ") and line.strip()]
    return {row[0]: row[1].strip() for row in rows if len(row) == 2}


def test_a_fresh_alertq_up_runs_the_whole_loop_with_nothing_configured(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    """`make run` for a newcomer: the README's example gets Acknowledge buttons; nobody clicks, so the demo
    escalation's step 1 comes; then a click edits the root and the preview shows the line the monitoring
    core received."""
    with fresh_up(alertq_env, tmp_path, ALERTQ_UP_DEMO_STEP_SCALE="0.1") as up:  # steps after 3 s and 6 s
        enqueue_readme_example(alertq_env, tmp_path)
        stack = up.stack
        root = stack.wait_for_message(
            lambda m: m["channel"] == "mattermost" and has_ack_button(m), "Mattermost root with its button"
        )
        slack_root = stack.wait_for_message(lambda m: m["channel"] == "slack" and has_ack_button(m), "Slack root")
        step = stack.wait_for_message(
            lambda m: m["channel"] == "mattermost" and "Escalated (step 1" in text(m), "step 1 of the demo escalation"
        )

        clicked = stack.click(root, "alice")
        line = up.wait_for_core_command(lambda c: c["command"] == "ACKNOWLEDGE_SVC_PROBLEM", "acknowledgement")
        stack.click(slack_root, "bob", label="Snooze 1 h")  # every action is on in the demo
        snoozed = up.wait_for_core_command(lambda c: c["command"] == "SCHEDULE_SVC_DOWNTIME", "downtime")
        [root] = roots(stack, "mattermost")
        commands = up.core_commands()
        output = up.output()
        secret_file = tmp_path / "var" / "ack-signing-secret"
        secret, mode = secret_file.read_text().strip(), secret_file.stat().st_mode & 0o777

    assert step["api"]["root"] == root["id"]  # in the incident's thread
    assert "@oncall-lead" in text(step)
    assert "Acknowledgement by @alice sent via alertq" in json.dumps(clicked), clicked
    # The demo core keeps no status, so the post says what was sent, not that the core confirmed it.
    assert "Acknowledgement by @alice sent via alertq" in text(root) and not has_ack_button(root), text(root)
    assert "DISK CRITICAL" in text(root)  # the root kept what it said
    assert line["line"].endswith(
        "] ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;alice;Acknowledged in Mattermost by alice via alertq"
    )
    fields = snoozed["line"].split(";")
    assert fields[1:3] == ["web01", "disk"] and int(fields[4]) - int(fields[3]) == 3600, snoozed
    assert fields[8] == "bob", snoozed  # the clicker is the downtime's author
    assert len(commands) == 2, commands  # nothing else reached the core
    # One line per part, with where it listens or what it talks to; the secret made on this first start.
    parts = startup_table(output)
    assert parts["ack-listener"] == f"{stack.listener}/mattermost/actions, {stack.listener}/slack/actions", output
    assert parts["sink"].startswith(f"{stack.sink}/  preview page")
    assert parts["ack-forwarder"] == f"-> command file {tmp_path / 'var' / 'nagios.cmd'} (shown on the preview page)"
    assert parts["escalator"] == f"routing {tmp_path / 'var' / 'demo-routing.toml'}"
    assert parts["worker-mattermost"].endswith("(Acknowledge buttons)")
    assert "generated var/ack-signing-secret" in output
    assert len(secret) == 64 and mode == 0o600
    assert secret not in output
