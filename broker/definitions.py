"""The topology plan as a RabbitMQ definitions document (`alertq topology export`).

RabbitMQ loads such a file at boot (`definitions.local.path`) or through the management API
(`POST /api/definitions/<vhost>`), so a new cluster has alertq's exchanges, queues and bindings before
any alertq process runs. It is built from `broker.topology.plan`, the same data `declare` applies: the
two can never disagree. Users, passwords and permissions are left out on purpose: they are secrets and
belong to the operator, not to a file in a repository.
"""

from __future__ import annotations

import json
from typing import Any

from broker.topology import Plan


def definitions(topology: Plan, vhost: str = "/") -> dict[str, Any]:
    """A definitions document for `vhost`. Every entity is durable and not auto-deleted, as `apply`
    declares it; entries keep the plan's order, so the output is stable for a file under version control."""
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": exchange.name,
                "vhost": vhost,
                "type": exchange.type,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for exchange in topology.exchanges
        ],
        "queues": [
            {
                "name": queue.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": dict(queue.arguments),
            }
            for queue in topology.queues
        ],
        "bindings": [
            {
                "source": binding.source,
                "vhost": vhost,
                "destination": binding.destination,
                "destination_type": "queue",
                "routing_key": binding.routing_key,
                "arguments": dict(binding.arguments),
            }
            for binding in topology.bindings
        ],
    }


def dumps(document: dict[str, Any]) -> str:
    """The file's text: two-space indent, keys sorted, one trailing newline (diffs stay small)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
