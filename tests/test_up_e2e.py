"""`alertq up` end to end: the whole stack as real processes, a notification from `alertq-enqueue` on all four
channels, and what each rendered notification looks like in the preview sink (its JSON API)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from tests.conftest import require
from tests.support.browser import browser_available, chromium_driver
from tests.support.rabbit import free_port
from tests.support.up_stack import enqueue_readme_example, fresh_up, has_ack_button

OUTPUT = "DISK CRITICAL - free space: / 120 MB (1%)"
CHANNELS = ("mattermost", "slack", "email", "webhook")


def children_of(pid: int) -> dict[int, str]:
    """Every process whose parent is `pid`, with its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int, cmdline: str) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z" and now == cmdline  # a reused pid is somebody else


def wait_messages(api: str, up: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        assert up.poll() is None, f"alertq up exited {up.returncode}:\n{log.read_text()[-3000:]}"
        try:
            messages = requests.get(f"{api}/api/messages", timeout=5).json()
        except requests.ConnectionError:
            messages = []
        if {m["channel"] for m in messages} >= set(CHANNELS):
            return messages
        time.sleep(0.2)
    raise AssertionError(f"sink holds {[m['channel'] for m in messages]} after {timeout} s:\n{log.read_text()[-3000:]}")


def test_a_problem_enqueued_on_four_channels_shows_up_rendered_in_the_sink(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    http_port, smtp_port = free_port(), free_port()
    env = {
        **alertq_env,
        "ALERTQ_SINK__HTTP_PORT": str(http_port),
        "ALERTQ_SINK__SMTP_PORT": str(smtp_port),
        "ALERTQ_ACK_LISTENER__PORT": str(free_port()),
        "ALERTQ_LOG__LEVEL": "info",
    }
    api = f"http://127.0.0.1:{http_port}"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        # In tmp_path: `alertq up` keeps what it generates (the signing secrets, the demo core) in ./var.
        up = subprocess.Popen(["alertq", "up"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        channels = [arg for name in CHANNELS for arg in ("--channel", name)]
        enqueued = subprocess.run(
            [
                "alertq-enqueue",
                *channels,
                "--type",
                "Service",
                "--notificationtype",
                "PROBLEM",
                "--hostname",
                "web01",
                "--hostaddress",
                "10.0.0.1",
                "--servicedesc",
                "disk",
                "--servicestate",
                "CRITICAL",
                "--output",
                OUTPUT,
                "--contact-email",
                "oncall@example.org",
            ],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert enqueued.returncode == 0, enqueued.stderr

        messages = {m["channel"]: m for m in wait_messages(api, up, log)}
        children = children_of(up.pid)
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(90)

    assert sorted(messages) == sorted(CHANNELS)
    # The chats post through their APIs (the sink's emulation): a conversation's root each.
    assert messages["mattermost"]["source"] == messages["slack"]["source"] == "api"
    mattermost = messages["mattermost"]["payload"]["props"]["attachments"][0]
    assert mattermost["color"] == "#d9534f"  # service CRITICAL, as openITCOCKPIT colours it
    assert "**PROBLEM**" in mattermost["text"] and "web01 / disk is **CRITICAL**" in mattermost["text"]
    assert OUTPUT in mattermost["text"]

    slack = messages["slack"]
    assert "web01" in slack["rendered"]["title"] and "CRITICAL" in slack["rendered"]["title"]
    assert OUTPUT in slack["rendered"]["text"] or OUTPUT in str(slack["payload"]["blocks"]), slack

    mail = messages["email"]["payload"]
    assert "PROBLEM" in mail["subject"] and "web01/disk" in mail["subject"] and "CRITICAL" in mail["subject"]
    assert mail["to"] == ["oncall@example.org"]
    assert OUTPUT in mail["text"]

    webhook = messages["webhook"]["payload"]
    assert (webhook["notification_type"], webhook["host"]["name"], webhook["state"]) == ("PROBLEM", "web01", 2)
    assert webhook["service"]["name"] == "disk" and webhook["output"] == OUTPUT
    assert messages["webhook"]["rendered"]["colour"] == "#d9534f"

    assert code == 0, log.read_text()[-3000:]
    # Children run as `python -m alertq <part> …`.
    parts = {" ".join(cmd.split()[3:5]) if " worker " in cmd else cmd.split()[3] for cmd in children.values()}
    # With nothing configured, the two-way half runs too: listener, forwarder (demo core), escalator (demo).
    loop = {"ack-listener", "ack-forwarder", "escalator"}
    assert parts == {"relay", "sink", *loop, *(f"worker {c}" for c in CHANNELS)}, children
    left = {pid: cmd for pid, cmd in children.items() if alive(pid, cmd)}
    assert left == {}


def test_make_run_in_a_browser_acknowledge_updates_the_post_and_shows_the_core_command(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    """A newcomer's first minutes, in Debian's chromium: fresh `alertq up`, the README's example, the demo
    escalation's step 1 in the incident's thread, then Acknowledge clicked on the page: the post says
    who acknowledged and the page shows the line the monitoring core received.
    ALERTQ_LOOP_SCREENSHOT=<png> keeps a screenshot."""
    require(browser_available(), "chromium/chromium-driver missing (apt-get install chromium chromium-driver)")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with (
        fresh_up(alertq_env, tmp_path, ALERTQ_UP_DEMO_STEP_SCALE="0.1") as up,  # steps after 3 s and 6 s
        chromium_driver(tmp_path / "chromium-profile") as browser,
    ):
        browser.get(up.stack.sink + "/")
        # The page re-renders what changes: an element found a moment ago may be gone.
        wait = WebDriverWait(browser, 90, ignored_exceptions=(StaleElementReferenceException,))
        assert "Nothing yet: click Acknowledge" in browser.find_element(By.ID, "core").text
        enqueue_readme_example(alertq_env, tmp_path)
        root = up.stack.wait_for_message(
            lambda m: m["channel"] == "mattermost" and has_ack_button(m), "Mattermost root with its button"
        )
        post, thread = f"message-{root['id']}", f"thread-{root['id']}"
        wait.until(lambda d: "Escalated (step 1" in d.find_element(By.ID, thread).text)
        step = browser.find_element(By.ID, thread).text

        user = browser.find_element(By.ID, "user")
        user.clear()
        user.send_keys("alice")

        def click_first_button(driver: Any) -> str:
            # The page redraws as posts arrive (the demo's step 2 may come now): find and click in one
            # go, again if the element went stale in between (the wait ignores that exception).
            button = driver.find_element(By.CSS_SELECTOR, f"#{post} button[data-action]")
            label: str = button.text
            if label == "Acknowledge":
                button.click()
            return label

        assert wait.until(click_first_button) == "Acknowledge"

        wait.until(lambda d: "Acknowledgement by @alice sent via alertq" in d.find_element(By.ID, post).text)
        wait.until(lambda d: d.find_elements(By.ID, "core-commands"))
        core = browser.find_element(By.ID, "core-commands").text
        buttons_left = browser.find_elements(By.CSS_SELECTOR, f"#{post} button")
        if os.environ.get("ALERTQ_LOOP_SCREENSHOT"):
            browser.save_screenshot(os.environ["ALERTQ_LOOP_SCREENSHOT"])

    assert "@oncall-lead" in step
    assert buttons_left == []
    [line] = core.splitlines()
    assert line.endswith(
        "] ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;alice;Acknowledged in Mattermost by alice via alertq"
    )
