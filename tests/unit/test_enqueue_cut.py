"""The 64 KiB cut of plugin output: the marker states exactly how many bytes of the input were dropped."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import event as event_builder
from producer.event import TEXT_LIMIT, clean_text
from tests.unit.enqueue_inprocess import InProcessEnqueue, enqueue_in_process

MARKER = re.compile(r"\n\[alertq: cut at 64 KiB, (at least )?(\d+) more bytes dropped\]\Z")
HOST_CALL = [
    "--channel",
    "webhook",
    "--type",
    "Host",
    "--notificationtype",
    "PROBLEM",
    "--hostuuid",
    "h",
    "--state",
    "1",
]


@pytest.fixture
def enqueue(tmp_path: Path) -> Iterator[InProcessEnqueue]:
    with enqueue_in_process(tmp_path) as run:
        yield run


def check_cut(data: bytes, text: str, total: int | None = None) -> int:
    """Assert `text` is `data` cut as promised; returns the number of bytes the marker says were dropped."""
    total = len(data) if total is None else total
    full = data.decode("utf-8", "replace")
    found = MARKER.search(text)
    if found is None:
        assert text == full and len(text.encode()) <= TEXT_LIMIT
        return 0
    dropped = int(found[2])
    kept_text = text[: found.start()]
    kept = total - dropped
    # The kept part is exactly the first `kept` bytes of the input, whole characters only...
    assert kept_text == data[:kept].decode("utf-8", "replace")
    assert full.startswith(kept_text), "the cut split a character"
    # ...and as much of it as fits: the next character or invalid run (at most 4 bytes) would not have.
    size = len(text.encode())
    assert TEXT_LIMIT - 4 < size <= TEXT_LIMIT
    return dropped


def test_ascii_argument_over_the_limit_counts_every_dropped_byte() -> None:
    big = b"x" * 100_000
    text = clean_text(big.decode())
    assert check_cut(big, text) == 100_000 - text.index("\n[alertq")
    assert len(text.encode()) == TEXT_LIMIT


def test_multibyte_text_is_cut_between_characters_and_counted_in_input_bytes() -> None:
    data = ("€" * 30_000).encode()  # 3 bytes each
    text = clean_text(data)
    dropped = check_cut(data, text)
    assert (len(data) - dropped) % 3 == 0


def test_invalid_bytes_count_as_the_bytes_they_were_not_as_their_replacement() -> None:
    # Latin-1 text: every é is one byte in, three bytes (U+FFFD) out.
    data = b"caf\xe9 " * 30_000
    text = clean_text(data.decode("utf-8", "surrogateescape"))
    dropped = check_cut(data, text)
    kept_text = text[: text.index("\n[alertq")]
    assert len(data) - dropped == len(kept_text)  # one input byte per character kept


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.binary(min_size=1, max_size=8),
            st.text(min_size=1, max_size=8).map(lambda s: s.encode("utf-8", "surrogatepass")),
            st.sampled_from([b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"\x80\x80\x80\x80", "€".encode(), b"x"]),
        ),
        min_size=1,
        max_size=40,
    ),
    repeat=st.integers(min_value=1, max_value=9000),
)
def test_any_bytes_over_the_limit_are_cut_exactly(pieces: list[bytes], repeat: int) -> None:
    data = b"".join(pieces) * repeat
    check_cut(data, clean_text(data))


def test_twenty_megabytes_on_stdin_are_counted_not_just_the_first_sixteen(enqueue: InProcessEnqueue) -> None:
    data = b"0123456789abcde\n" * (20 * 1000 * 1000 // 16)
    outcome = enqueue([*HOST_CALL, "--output", "-"], stdin=data)
    assert outcome.code == 0
    [event] = outcome.events
    dropped = check_cut(data, event["output"])
    assert dropped == 20_000_000 - event["output"].index("\n[alertq")
    assert dropped > 19_900_000


def test_stdin_without_end_is_counted_up_to_a_limit_then_said_to_be_at_least(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_builder, "STDIN_COUNT_LIMIT", 4 * 1024 * 1024)
    monkeypatch.setattr(event_builder, "STDIN_CHUNK", 1024 * 1024)

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            buffer[:] = b"y" * len(buffer)
            return len(buffer)

    text = event_builder._read_stdin(io.BufferedReader(Endless()))
    found = MARKER.search(text)
    assert found is not None and found[1] == "at least "
    assert int(found[2]) >= 4 * 1024 * 1024 + 1 - TEXT_LIMIT


def test_output_that_fits_is_untouched(enqueue: InProcessEnqueue) -> None:
    data = ("é" * 1000).encode() + b"\xff"
    [event] = enqueue([*HOST_CALL, "--output", "-"], stdin=data).events
    assert event["output"] == data.decode("utf-8", "replace")
