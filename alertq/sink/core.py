"""What the monitoring core received: the lines of a Nagios-style external command file, as the page's
"monitoring core" panel and `GET /api/core/commands` show them.

`alertq up` points the ack forwarder at a plain file under var/ (`sink.core_command_file`); a real core
reads the same lines from its FIFO, `[<epoch>] COMMAND;arg;arg…` one per line. The sink only reads the
file: whatever command a forwarder writes (acknowledgements, downtimes, rechecks…) is shown as it came.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SHOWN = 100  # newest lines on the page and in the API
TAIL_BYTES = 256 * 1024  # read no more than this from the end of a file that keeps growing
_LINE = re.compile(r"\[(\d+)\] ([A-Z_]+)(?:;(.*))?")


@dataclass(frozen=True)
class CoreCommand:
    line: str  # exactly as written, without the newline
    command: str | None  # e.g. ACKNOWLEDGE_SVC_PROBLEM; None for a line that is no external command
    arguments: list[str]
    at: str | None  # the line's own timestamp, ISO 8601 UTC

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "command": self.command, "arguments": self.arguments, "at": self.at}


def parse(line: str) -> CoreCommand:
    match = _LINE.fullmatch(line)
    if match is None:
        return CoreCommand(line, None, [], None)
    at = datetime.fromtimestamp(int(match.group(1)), UTC).isoformat().replace("+00:00", "Z")
    arguments = match.group(3).split(";") if match.group(3) is not None else []
    return CoreCommand(line, match.group(2), arguments, at)


class CoreCommandFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def version(self) -> str:
        """Changes whenever the file does (size and modification time), "-" while there is none."""
        try:
            found = self.path.stat()
        except OSError:
            return "-"
        return f"{found.st_size}.{found.st_mtime_ns}"

    def commands(self, limit: int = SHOWN) -> list[CoreCommand]:
        """The newest `limit` lines, oldest first. Only a plain file is read: reading a core's FIFO would
        take the commands away from the core."""
        try:
            if not stat.S_ISREG(self.path.stat().st_mode):
                return []
            with self.path.open("rb") as file:
                size = file.seek(0, 2)
                file.seek(max(0, size - TAIL_BYTES))
                data = file.read()
        except OSError:
            return []
        if len(data) < size:
            data = data.split(b"\n", 1)[-1]  # the first line was cut
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        return [parse(line) for line in lines[-limit:]] if limit else []
