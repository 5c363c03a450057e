"""`alertq up` with the ack parts configured: a click reaches the core's command file."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import requests

from schemas.ack_token import sign_incident
from tests.support.ack_processes import SIGNING_SECRET
from tests.support.rabbit import free_port


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
        up = subprocess.Popen(["alertq", "up"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
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
