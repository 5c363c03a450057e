"""The sink's "what the monitoring core received" panel reads a command file's lines as written, newest
last, and never reads a FIFO (that would take the commands from a real core)."""

from __future__ import annotations

import os
from pathlib import Path

from alertq.sink.core import TAIL_BYTES, CoreCommandFile, parse


def test_each_line_is_shown_as_written_with_its_command_and_time(tmp_path: Path) -> None:
    path = tmp_path / "nagios.cmd"
    path.write_text(
        "[1764670000] ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;alice;Acknowledged in Mattermost by alice via alertq\n"
        "[1764670060] SCHEDULE_FORCED_SVC_CHECK;web01;disk;1764670060\n"
        "not a command\n"
    )
    found = CoreCommandFile(path).commands()

    assert [c.command for c in found] == ["ACKNOWLEDGE_SVC_PROBLEM", "SCHEDULE_FORCED_SVC_CHECK", None]
    assert found[0].line.startswith("[1764670000] ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;alice;")
    assert found[0].arguments[:3] == ["web01", "disk", "2"] and found[0].at == "2025-12-02T10:06:40Z"
    assert found[2].line == "not a command"


def test_only_the_newest_lines_of_a_long_file_are_read_and_none_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "nagios.cmd"
    line = "[1764670000] ACKNOWLEDGE_HOST_PROBLEM;" + "h" * 90 + ";2;1;1;alice;x\n"
    path.write_text(line * (2 * TAIL_BYTES // len(line)))
    found = CoreCommandFile(path).commands()

    assert len(found) == 100
    assert all(c.line == line.rstrip("\n") for c in found)


def test_the_version_changes_when_a_line_arrives(tmp_path: Path) -> None:
    path = tmp_path / "nagios.cmd"
    core = CoreCommandFile(path)
    missing = core.version()
    path.write_text("")
    empty = core.version()
    with path.open("a") as out:
        out.write("[1764670000] ACKNOWLEDGE_HOST_PROBLEM;web01;2;1;1;alice;x\n")
    assert len({missing, empty, core.version()}) == 3
    assert core.commands()[0].command == "ACKNOWLEDGE_HOST_PROBLEM"


def test_a_fifo_is_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "nagios.cmd"
    os.mkfifo(fifo)
    assert CoreCommandFile(fifo).commands() == []  # returns at once: no open() that waits for a writer


def test_a_line_without_arguments_parses() -> None:
    assert parse("[1764670000] SAVE_STATE_INFORMATION").command == "SAVE_STATE_INFORMATION"
