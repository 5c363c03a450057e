"""Every chat API call the sink answered, in order, for tests to assert exact calls (GET /api/calls).

A call is kept as the client sent it and as the sink answered: method, path, query, content type,
body (JSON as sent, a form as a dict of strings), status, answer and the API's error code (Slack's
`error`, Mattermost's error `id`, or `limit exceeded`). The token is never kept, only whether it was
accepted.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any, Literal

Api = Literal["mattermost", "slack"]
# Query parameters both APIs also take a token in.
TOKEN_PARAMS = ("access_token", "token")


class CallLog:
    def __init__(self, max_calls: int) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=max_calls)
        self._next = 1
        self._lock = threading.Lock()
        self.dropped = 0

    def record(
        self,
        api: Api,
        method: str,
        path: str,
        query: dict[str, str],
        content_type: str,
        body: Any,
        status: int,
        answer: Any,
        error: str | None,
        authorized: bool,
    ) -> None:
        with self._lock:
            if len(self._calls) == self._calls.maxlen:
                self.dropped += 1
            self._calls.append(
                {
                    "seq": self._next,
                    "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "api": api,
                    "method": method,
                    "path": path,
                    "query": {k: v for k, v in query.items() if k not in TOKEN_PARAMS},
                    "content_type": content_type,
                    "body": body,
                    "status": status,
                    "error": error,
                    "authorized": authorized,
                    "answer": answer,
                }
            )
            self._next += 1

    def list(self, api: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self._calls if c["seq"] > after and api in (None, c["api"])]

    def clear(self) -> int:
        with self._lock:
            count = len(self._calls)
            self._calls.clear()
        return count
