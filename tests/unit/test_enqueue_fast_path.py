"""What alertq-enqueue does without json, re, datetime and tomllib writes exactly what they would.

The enqueue command avoids those imports for start-up time (see producer/jsontext.py, producer/event.py,
producer/liteconfig.py); these tests hold each replacement to the standard library's own answer, and the
settings cache to the file it caches.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import event as event_builder
from producer import flags as cli_flags
from producer import jsontext, liteconfig

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=True),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_the_json_text_is_the_json_modules(value: object) -> None:
    assert jsontext.dumps(value) == _json(value)


def test_every_character_below_space_and_the_quotes_are_escaped_as_json_escapes_them() -> None:
    text = "".join(chr(i) for i in range(0x80)) + '\\"\u2028\ufffd\U0001f525'
    assert jsontext.dumps({text: [text]}) == _json({text: [text]})


def test_an_event_is_written_as_json_writes_it() -> None:
    parsed = cli_flags.parse(
        [
            *("--channel", "slack", "--channel", "email", "--type", "Service", "--notificationtype", "PROBLEM"),
            *("--hostname", "web01", "--servicedesc", 'Disk "/"', "--servicestate", "2", "--output", "a\tb\nc\x1b"),
            *("--timestamp", "1795800000", "--notification-number", "3", "--contact", "oncall"),
        ]
    )
    assert parsed is not None
    for event in event_builder.build_events(parsed):
        assert jsontext.dumps(event) == _json(event)
        assert json.loads(jsontext.dumps(event)) == event


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=253402300799 * 10**6 + 999999))
def test_times_are_written_as_datetime_writes_them(microseconds: int) -> None:
    expected = datetime.fromtimestamp(microseconds // 10**6, UTC).replace(microsecond=microseconds % 10**6)
    assert event_builder.iso_utc(microseconds) == expected.isoformat()


@pytest.mark.parametrize(
    "value",
    [
        *("1795800000", " 1795800000 ", "1795800000.0", "1795800000.25", "1.7958e9", "2026-11-27T10:00:00+01:00"),
        *("2026-11-27T10:00:00", "2026-11-27 10:00:00.5+00:00", "946684800", "946684799", "nan", "inf", "1e20"),
    ],
)
def test_a_timestamp_is_what_datetime_makes_of_it(value: str) -> None:
    received = datetime.now(UTC)
    received_us = int(received.timestamp() * 10**6)
    warnings: list[str] = []
    got = event_builder._timestamp(value, received_us, warnings)
    try:
        seconds = float(value)
    except ValueError:
        parsed = datetime.fromisoformat(value.strip())
        seconds = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if 946684800 <= seconds <= received_us / 10**6 + 86400:
        assert (got, warnings) == (datetime.fromtimestamp(seconds, UTC).isoformat(), [])
    else:
        assert got == event_builder.iso_utc(received_us) and len(warnings) == 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcxyz019-_A. \n\t/é", max_size=70) | st.sampled_from(["a" * 63, "a" * 64, "-a", "_a", "9"]))
def test_channel_names_are_the_pattern_without_re(name: str) -> None:
    assert event_builder.channel_name_ok(name) == bool(re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name))


# --- the settings cache ------------------------------------------------------------------------------


def _config(path: Path, text: str, age: float = 3600.0) -> Path:
    path.write_text(text)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_settled_file_is_read_back_from_the_cache_and_an_edit_is_seen_at_once(tmp_path: Path) -> None:
    cache = liteconfig.SettingsCache(str(tmp_path / "cache"))
    config = _config(tmp_path / "alertq.toml", '[spool]\ndir = "/srv/a"\n[broker]\nurls = ["amqp://a/"]\n')
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/a"
    [entry] = (tmp_path / "cache").iterdir()
    assert entry.stat().st_mode & 0o777 == 0o600 and (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    assert liteconfig.LiteConfig(str(config), cache).broker_urls() == ("amqp://a/",)
    # The same size, in place: a new modification time is a new file to the cache.
    _config(config, '[spool]\ndir = "/srv/b"\n[broker]\nurls = ["amqp://b/"]\n', age=1800.0)
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/b"
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/b"


def test_a_file_changed_just_now_is_not_cached(tmp_path: Path) -> None:
    cache = liteconfig.SettingsCache(str(tmp_path / "cache"))
    config = _config(tmp_path / "alertq.toml", '[spool]\ndir = "/srv/a"\n', age=0.0)
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/a"
    assert not (tmp_path / "cache").exists()


def test_a_cache_entry_that_is_not_the_users_own_is_ignored(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache = liteconfig.SettingsCache(str(cache_dir))
    config = _config(tmp_path / "alertq.toml", '[spool]\ndir = "/srv/real"\n')
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/real"
    [entry] = cache_dir.iterdir()
    planted = entry.read_bytes().replace(b"/srv/real", b"/srv/fake")
    # Writable by others: ignored.
    entry.write_bytes(planted)
    entry.chmod(0o666)
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/real"
    # The directory open to others: ignored, whatever is in it.
    entry.write_bytes(planted)
    entry.chmod(0o600)
    cache_dir.chmod(0o777)
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/real"
    # A symlink in the entry's place: ignored.
    cache_dir.chmod(0o700)
    entry.unlink()
    (tmp_path / "elsewhere").write_bytes(planted)
    entry.symlink_to(tmp_path / "elsewhere")
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/real"


def test_a_damaged_cache_entry_means_the_file_is_parsed(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache = liteconfig.SettingsCache(str(cache_dir))
    config = _config(tmp_path / "alertq.toml", '[spool]\ndir = "/srv/real"\n')
    liteconfig.LiteConfig(str(config), cache).spool_dir()
    [entry] = cache_dir.iterdir()
    for damage in (b"", b"\x00garbage", entry.read_bytes()[:-3]):
        entry.write_bytes(damage)
        assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/real"


def test_no_usable_cache_directory_still_reads_the_file(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    cache = liteconfig.SettingsCache(str(tmp_path / "not-a-dir" / "cache"))
    config = _config(tmp_path / "alertq.toml", '[spool]\ndir = "/srv/a"\n')
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/a"


def test_a_toml_date_in_the_cached_tables_is_read_without_the_cache(tmp_path: Path) -> None:
    cache = liteconfig.SettingsCache(str(tmp_path / "cache"))
    config = _config(tmp_path / "alertq.toml", '[spool]\ndir = "/srv/a"\nsince = 2026-01-01\n')
    assert liteconfig.LiteConfig(str(config), cache).spool_dir() == "/srv/a"
    assert list((tmp_path / "cache").glob("*")) == []


@pytest.mark.parametrize("content", [b"[broker\nurls = \n", b'[spool]\ndir = "\xff"\n'])
def test_a_broken_file_is_one_config_error_and_is_not_cached(tmp_path: Path, content: bytes) -> None:
    cache = liteconfig.SettingsCache(str(tmp_path / "cache"))
    config = tmp_path / "alertq.toml"
    config.write_bytes(content)
    os.utime(config, (time.time() - 3600, time.time() - 3600))
    for _ in range(2):
        with pytest.raises(liteconfig.ConfigError, match="cannot read config file"):
            liteconfig.LiteConfig(str(config), cache).spool_dir()
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []
