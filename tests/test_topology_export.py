"""`alertq topology export`: the definitions file RabbitMQ loads is exactly what `alertq topology declare`
creates, read back from a live broker through the management API, and the committed
deploy/rabbitmq/definitions.json is what the command writes for the default settings."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pika
import pytest
import requests

from broker import names
from tests.conftest import require, run
from tests.support.escalation import routing_file
from tests.support.rabbit import PrivateNode, management_api

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "deploy" / "rabbitmq" / "definitions.json"
RABBITMQ_CONF = REPO / "deploy" / "rabbitmq" / "rabbitmq.conf"
REGENERATE = "alertq topology export --defaults -o deploy/rabbitmq/definitions.json"

# What identifies an entity and what RabbitMQ compares when it is declared again.
FIELDS = {
    "exchanges": ("name", "type", "durable", "auto_delete", "internal", "arguments"),
    "queues": ("name", "durable", "auto_delete", "arguments"),
    "bindings": ("source", "destination", "destination_type", "routing_key", "arguments"),
}


ESCALATE_ALL = """
[policies.all]
hosts = ["*"]

[[policies.all.steps]]
after = "10m"
notify = ["alice"]
channels = ["webhook"]
"""


def export(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = run(["alertq", "topology", "export", *args], env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def comparable(document: dict[str, Any]) -> dict[str, list[str]]:
    """Each kind as a sorted list of canonical JSON entries (duplicates kept), alertq's entities only."""
    view: dict[str, list[str]] = {}
    for kind, fields in FIELDS.items():
        entries = [{f: entry.get(f) for f in fields} for entry in document.get(kind, [])]
        if kind == "exchanges":
            entries = [e for e in entries if e["name"] and not str(e["name"]).startswith("amq.")]
        view[kind] = sorted(json.dumps(e, sort_keys=True) for e in entries)
    return view


def vhost_of(url: str) -> str:
    return unquote(urlsplit(url).path[1:]) or "/"


def api_for(url: str) -> tuple[str, tuple[str, str]]:
    api = management_api(url)
    require(api is not None, "the RabbitMQ management API does not answer (set RABBITMQ_MANAGEMENT_URL)")
    assert api is not None
    parts = urlsplit(url)
    return api, (parts.username or "guest", parts.password or "guest")


def broker_definitions(url: str) -> dict[str, Any]:
    api, auth = api_for(url)
    response = requests.get(f"{api}/definitions/{quote(vhost_of(url), safe='')}", auth=auth, timeout=30)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def test_the_committed_definitions_file_is_what_export_writes_for_the_defaults(alertq_env: dict[str, str]) -> None:
    # --defaults ignores the environment: settings that would change the plan make no difference.
    env = {**alertq_env, "ALERTQ_RETRY__DELAYS": "7", "ALERTQ_CHANNELS__SLACK__ENABLED": "false"}
    result = run(["alertq", "topology", "export", "--defaults"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == COMMITTED.read_text(), f"deploy/rabbitmq/definitions.json is stale: run `{REGENERATE}`"
    readme = (REPO / "deploy" / "rabbitmq" / "README.md").read_text()
    assert REGENERATE in readme, "the README must show how to regenerate the file"


def test_export_follows_the_settings_in_force(alertq_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **alertq_env,
        "ALERTQ_CHANNELS__SLACK__ENABLED": "false",
        "ALERTQ_RETRY__DELAYS": "7,70",
        "ALERTQ_BROKER__DELIVERY_LIMIT": "5",
    }
    out = tmp_path / "defs.json"
    result = run(["alertq", "topology", "export", "--vhost", "alertq", "-o", str(out)], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    document = json.loads(out.read_text())
    queues = {q["name"]: q for q in document["queues"]}
    assert names.notify_queue("slack") not in queues
    assert queues[names.notify_queue("mattermost")]["arguments"]["x-delivery-limit"] == 5
    delays = {n: q["arguments"]["x-message-ttl"] for n, q in queues.items() if n.startswith("alertq.delay.")}
    assert delays == {"alertq.delay.7s": 7000, "alertq.delay.70s": 70000}
    assert document["vhosts"] == [{"name": "alertq"}]
    assert {e["vhost"] for kind in FIELDS for e in document[kind]} == {"alertq"}
    assert "password" not in out.read_text() and "users" not in document


def test_export_to_an_unwritable_place_fails_with_one_line(alertq_env: dict[str, str], tmp_path: Path) -> None:
    result = run(["alertq", "topology", "export", "-o", str(tmp_path / "missing" / "defs.json")], alertq_env)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot write") and result.stderr.count("\n") == 1


def test_declare_creates_exactly_the_exported_definitions(alertq_env: dict[str, str], amqp_url: str) -> None:
    declared = run(["alertq", "topology", "declare"], alertq_env)
    assert declared.returncode == 0, declared.stderr
    exported = export(alertq_env, "--vhost", vhost_of(amqp_url))
    live = comparable(broker_definitions(amqp_url))
    assert live == comparable(exported)
    # The headers bindings of the delay queues, with their arguments, are part of what was compared.
    delay_bindings = [json.loads(b) for b in live["bindings"] if json.loads(b)["source"] == names.DELAY_EXCHANGE]
    assert delay_bindings and all(b["arguments"]["x-match"] == "all" for b in delay_bindings)
    assert {b["arguments"][names.HEADER_DELAY] for b in delay_bindings} == {"10", "60", "300", "900"}


def test_imported_definitions_are_what_declare_expects(alertq_env: dict[str, str], amqp_url: str) -> None:
    """Load the file the way an operator does (management API), then let every process declare on top:
    nothing is refused as inequivalent and nothing is added."""
    exported = export(alertq_env, "--vhost", vhost_of(amqp_url))
    api, auth = api_for(amqp_url)
    response = requests.post(
        f"{api}/definitions/{quote(vhost_of(amqp_url), safe='')}", json=exported, auth=auth, timeout=60
    )
    assert response.status_code in (200, 201, 204), response.text
    assert comparable(broker_definitions(amqp_url)) == comparable(exported)

    declared = run(["alertq", "topology", "declare"], alertq_env)
    assert declared.returncode == 0, declared.stderr
    assert comparable(broker_definitions(amqp_url)) == comparable(exported)


def _config_lines(node: PrivateNode, definitions_dir: Path) -> list[str]:
    """deploy/rabbitmq/rabbitmq.conf as a single private node can run it: its own name as the only peer,
    the test's definitions directory, the node's own ports; `default_queue_type` only where the
    installed RabbitMQ knows it (3.13+)."""
    knows_default_queue_type = _rabbitmq_version() >= (3, 13)
    lines = []
    for line in RABBITMQ_CONF.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key = line.split("=", 1)[0].strip()
        if key.startswith(("listeners.", "management.")):
            continue
        if key == "default_queue_type" and not knows_default_queue_type:
            continue
        if key.startswith("cluster_formation.classic_config.nodes."):
            line = f"{key} = {node.name}" if key.endswith(".1") else ""
        if key == "definitions.local.path":
            line = f"{key} = {definitions_dir}"
        if line:
            lines.append(line)
    return lines


def _rabbitmq_version() -> tuple[int, ...]:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"], capture_output=True, text=True, check=False
    )
    numbers = result.stdout.split("-")[0].split(".")
    return tuple(int(n) for n in numbers if n.isdigit()) or (0,)


def _password_hash(password: str) -> str:
    """RabbitMQ's salted SHA-256, as the one-liner in deploy/rabbitmq/README.md makes it."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _readme_users_file(path: Path, passwords: dict[str, str]) -> None:
    """users.json exactly as deploy/rabbitmq/README.md shows it, with real hashes for the placeholders."""
    text = (REPO / "deploy" / "rabbitmq" / "README.md").read_text()
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block is not None, "deploy/rabbitmq/README.md has no users.json example"
    users = json.loads(block.group(1))
    for user in users["users"]:
        user["password_hash"] = _password_hash(passwords[user["name"]])
    path.write_text(json.dumps(users))


@pytest.mark.privatebroker
def test_a_node_booted_with_the_deploy_config_has_the_topology_before_any_alertq_process(
    alertq_env: dict[str, str],
) -> None:
    require(shutil.which("rabbitmq-server") is not None, "rabbitmq-server is not installed")
    require(os.geteuid() == 0, "private RabbitMQ nodes need root (Debian's wrapper switches to user rabbitmq)")
    node = PrivateNode()
    try:
        definitions_dir = node.base / "definitions.d"
        definitions_dir.mkdir()
        shutil.copy(COMMITTED, definitions_dir / "alertq-definitions.json")
        _readme_users_file(definitions_dir / "users.json", {"alertq": "alertq-pw", "admin": "admin-pw"})
        for path in (definitions_dir, *definitions_dir.iterdir()):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        conf = node.base / "rabbitmq.conf"
        conf.write_text(conf.read_text() + "\n".join(_config_lines(node, definitions_dir)) + "\n")
        admin_url = node.url.replace("guest:guest", "admin:admin-pw")
        _start(node, admin_url)  # PrivateNode.start waits for guest, who does not exist here

        # No default user: guest does not exist once definitions are loaded at boot.
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(node.url))
        connection = pika.BlockingConnection(pika.URLParameters(admin_url))
        try:
            channel = connection.channel()
            for queue in json.loads(COMMITTED.read_text())["queues"]:
                channel.queue_declare(queue["name"], passive=True)  # raises 404 if the boot did not load it
        finally:
            connection.close()

        alertq_url = node.url.replace("guest:guest", "alertq:alertq-pw")
        # The file holds the topology with escalation: declare it as a deployment with a routing file does.
        routing = routing_file(node.base / "routing.toml", ESCALATE_ALL)
        env = {**alertq_env, "ALERTQ_BROKER__URLS": alertq_url, "ALERTQ_ROUTING_FILE": str(routing)}
        declared = run(["alertq", "topology", "declare"], env)
        assert declared.returncode == 0, declared.stderr  # the loaded arguments are the ones declare expects
        assert declared.stdout.count("\n") == 1, declared.stdout  # and nothing to note
        _alertq_permissions_suffice_and_no_more(alertq_url)
    finally:
        node.destroy()


def _start(node: PrivateNode, url: str, timeout: float = 90) -> None:
    subprocess.run(["rabbitmq-server", "-detached"], env=node.env(), check=True, capture_output=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pika.BlockingConnection(pika.URLParameters(url)).close()
        except pika.exceptions.AMQPError:
            time.sleep(0.25)
        else:
            return
    raise AssertionError(f"the node accepted no login within {timeout:.0f} s; logs in {node.base / 'log'}")


def _alertq_permissions_suffice_and_no_more(url: str) -> None:
    """The README's narrow permissions: alertq's own names and the default exchange (worker receipts)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(names.EVENTS_EXCHANGE, "escalate.timer", b"{}", mandatory=True)
        receipts = names.RECEIPT_QUEUE_PREFIX + "test"
        channel.queue_declare(receipts, exclusive=True, auto_delete=True)
        channel.basic_publish("", receipts, b"{}", mandatory=True)
        assert channel.queue_declare(receipts, passive=True).method.message_count == 1
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("someone.else", durable=True)
        assert refused.value.reply_code == 403
    finally:
        if connection.is_open:
            connection.close()
