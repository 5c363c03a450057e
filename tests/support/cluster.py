"""A real 3-node RabbitMQ cluster on this machine, from Debian's rabbitmq-server, for the scale-out tests.

Each node is a `PrivateNode` (own node name, AMQP and distribution ports, data dir, pid file) plus its own
management port and a cluster formation config. The first node starts alone; the others start after it,
one at a time, with classic-config peer discovery naming the first node, so each joins it on its first
boot: no `rabbitmqctl join_cluster` (three CLI calls per node, and the CLI has only a few distribution
ports on a busy machine). The Erlang cookie is shared because Debian's wrapper runs every node as user
`rabbitmq` with HOME /var/lib/rabbitmq, whose `.erlang.cookie` they all read.

`stop(node)` is a real outage: SIGTERM to the node's Erlang VM (what systemd does), and the node stays
down. The management API of any running node answers for the whole cluster (queue leaders, members,
client connections and the node each is on).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from tests.support.rabbit import PrivateNode, free_port, port_open, with_vhost

SIZE = 3


class ClusterNode(PrivateNode):
    def __init__(self, name: str, seed: str | None) -> None:
        super().__init__(name)
        self.management_port = free_port()
        config = [
            f"listeners.tcp.1 = 127.0.0.1:{self.port}",
            "loopback_users = none",
            "management.tcp.ip = 127.0.0.1",
            f"management.tcp.port = {self.management_port}",
            # Connections show in the management API after the first stats emission: soon, not in 5 s.
            "collect_statistics_interval = 500",
        ]
        if seed is not None:
            # A blank node with a peer to find joins it at its first boot.
            config += [
                "cluster_formation.peer_discovery_backend = classic_config",
                f"cluster_formation.classic_config.nodes.1 = {seed}",
            ]
        (self.base / "rabbitmq.conf").write_text("\n".join(config) + "\n")
        (self.base / "enabled_plugins").write_text("[rabbitmq_management].\n")

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.management_port}/api"

    def terminate(self) -> None:
        """SIGTERM without waiting (see `stop`)."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    @property
    def running(self) -> bool:
        return port_open("127.0.0.1", self.port)

    def env(self) -> dict[str, str]:
        env = super().env()
        # Three nodes share two cores with other test runs: schedulers that sleep when idle instead of
        # busy-waiting leave the CPU to whoever has work (RabbitMQ's advice for shared hosts).
        env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "+sbwt none +sbwtdcpu none +sbwtdio none"
        return env


@dataclass
class QueueInfo:
    leader: str
    members: list[str]
    online: list[str]
    messages: int


class Cluster:
    """Three nodes, started in order, the later ones joining the first; `destroy()` removes everything."""

    def __init__(self, size: int = SIZE) -> None:
        tag = f"{time.time_ns() % 10**9:09d}"
        names = [f"alertqcl{tag}n{i + 1}@localhost" for i in range(size)]
        self.nodes = [ClusterNode(name, seed=None if i == 0 else names[0]) for i, name in enumerate(names)]

    # ---- life cycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> Cluster:
        # One at a time: a node joins a running cluster; two blank nodes booting at once could each decide
        # to start alone.
        for node in self.nodes:
            node.start(timeout=timeout)
            self._wait_api(node, timeout)
        self._wait_members(timeout)
        return self

    def _wait_api(self, node: ClusterNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(node.api + "/overview", auth=("guest", "guest"), timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"management API of {node.name} did not answer; logs in {node.base / 'log'}")

    def _wait_members(self, timeout: float) -> None:
        want = {node.name for node in self.nodes}
        deadline = time.monotonic() + timeout
        running: set[str] = set()
        while time.monotonic() < deadline:
            running = {n["name"] for n in self.get(self.nodes[0], "/nodes") if n.get("running")}
            if running == want:
                return
            time.sleep(0.25)
        raise RuntimeError(f"cluster did not form: running {sorted(running)}, wanted {sorted(want)}")

    def stop(self, name: str) -> None:
        """A node outage: SIGTERM its VM and wait until it is gone. The node stays down."""
        self.node(name).stop()

    def destroy(self) -> None:
        # SIGTERM to all first, so the nodes shut down side by side, not one after the other.
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.destroy()

    # ---- what tests need ------------------------------------------------------------------------------

    def add_vhost(self, vhost: str) -> list[str]:
        """Make `vhost` (guest may do everything there); returns every node's URL of it, in node order."""
        path = quote(vhost, safe="")
        self._put(f"/vhosts/{path}", {})
        self._put(f"/permissions/{path}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        return [with_vhost(node.url, vhost) for node in self.nodes]

    def _put(self, path: str, body: object) -> None:
        node = self.surviving()[0]
        response = requests.put(node.api + path, json=body, auth=("guest", "guest"), timeout=60)
        response.raise_for_status()

    def node_of(self, url: str) -> ClusterNode:
        return next(node for node in self.nodes if url.startswith(node.url.rstrip("/")))

    def node(self, name: str) -> ClusterNode:
        return next(node for node in self.nodes if node.name == name)

    def surviving(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.running]

    def get(self, via: ClusterNode | None, path: str) -> Any:
        """GET from the management API of `via`, or of the first running node."""
        node = via or self.surviving()[0]
        response = requests.get(node.api + path, auth=("guest", "guest"), timeout=30)
        response.raise_for_status()
        return response.json()

    def queue(self, name: str, vhost: str = "/") -> QueueInfo:
        """Leader, members and message count of a quorum queue, as the cluster sees it now."""
        info = self.get(None, f"/queues/{quote(vhost, safe='')}/{quote(name, safe='')}")
        return QueueInfo(
            leader=info["leader"],
            members=list(info.get("members", [])),
            online=list(info.get("online", [])),
            messages=int(info.get("messages", 0)),
        )

    def depths(self, vhost: str = "/") -> dict[str, int]:
        """Every queue of `vhost` that holds messages (ready, unacked or awaiting dead-lettering)."""
        queues = self.get(None, f"/queues/{quote(vhost, safe='')}")
        depths = {q["name"]: int(q.get("messages", 0)) + int(q.get("messages_dlx", 0)) for q in queues}
        return {name: n for name, n in depths.items() if n}

    def wait_leader_elsewhere(self, queue: str, gone: str, vhost: str = "/", timeout: float = 60) -> str:
        """Wait until `queue` has a leader other than `gone` (the stopped node); returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                leader = self.queue(queue, vhost).leader
            except (requests.RequestException, KeyError):
                leader = ""
            if leader and leader != gone:
                return leader
            time.sleep(0.25)
        raise AssertionError(f"{queue} has no leader besides {gone} after {timeout:.0f}s")

    def wait_connections(
        self, vhost: str, clients: dict[str, int], timeout: float = 30, on: set[str] | None = None
    ) -> dict[str, list[str]]:
        """Wait until each named client has its count of connections to `vhost` (all on nodes `on`, if
        given); returns `connections(vhost)` as seen last. Stats reach the API with a lag."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.connections(vhost)
            ok = all(
                len(seen.get(name, [])) == count and (on is None or set(seen.get(name, [])) <= on)
                for name, count in clients.items()
            )
            if ok or time.monotonic() > deadline:
                return seen
            time.sleep(0.25)

    def connections(self, vhost: str = "/") -> dict[str, list[str]]:
        """Client-provided connection name → the nodes its open connections to `vhost` are on."""
        result: dict[str, list[str]] = {}
        for conn in self.get(None, f"/vhosts/{quote(vhost, safe='')}/connections"):
            name = (conn.get("client_properties") or {}).get("connection_name", "")
            result.setdefault(name, []).append(conn["node"])
        return result
