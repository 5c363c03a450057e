"""The settings alertq-enqueue needs, read with the standard library only.

The enqueue command runs once per contact per notification, thousands of times in an alert storm, so it
must not pay for importing pydantic. It needs two settings: the spool directory and, for the direct
path, the broker URLs. They are read from the same places as `schemas.settings.Settings` reads them
(env `ALERTQ_SPOOL__DIR` / `ALERTQ_BROKER__URLS` over the TOML file over the defaults); a test keeps
the two readers in agreement.

Each setting is read when first asked for, and the TOML file is looked at only when a setting is not in
the environment. Parsing it costs more than everything else an enqueue does (tomllib imports `re` and
`typing`), so the tables enqueue reads from it (`[spool]`, `[broker]`) are kept in a per-user cache
(see `SettingsCache`): an enqueue for an unchanged file reads them back with `marshal` and never imports
tomllib. Any doubt about the cache (missing, not ours, unreadable, another file, a file changed since)
means the file is parsed as before, so the cache can only make a read faster, never different.
"""

from __future__ import annotations

import marshal
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_SPOOL_DIR = "var/spool"
CONFIG_SEARCH_PATH = ("alertq.toml", "/etc/alertq/alertq.toml")
# The tables of the TOML file that LiteConfig reads; only these are cached.
CACHED_TABLES = ("spool", "broker")


class ConfigError(Exception):
    pass


def _config_file() -> str | None:
    named = os.environ.get("ALERTQ_CONFIG")
    if named:
        if not os.path.isfile(named):
            raise ConfigError(f"ALERTQ_CONFIG names {named!r}, which is not a file")
        return named
    return next((p for p in CONFIG_SEARCH_PATH if os.path.isfile(p)), None)


def _split_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        import json  # only for a JSON list in ALERTQ_BROKER__URLS: json imports re

        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_toml(data: bytes) -> dict[str, Any]:
    """The TOML file's text as tomllib reads it. Raises ValueError (TOMLDecodeError, not UTF-8)."""
    import tomllib

    return tomllib.loads(data.decode())


class SettingsCache:
    """The `[spool]` and `[broker]` tables of config files, as parsed once, in a directory of one user.

    One file per config file, named after its device and inode, holding the file's identity (device,
    inode, size, modification and change times in ns) and the tables, marshalled. An entry is used only
    when the config file's identity is unchanged, so an edit (in place or by rename) is seen at once.
    A file changed less than `SETTLE_NS` before it is parsed is not cached: a second change within the
    same tick of the file system's clock would keep size and times (git's "racy" files).

    The directory is `/tmp/alertq-enqueue-<uid>`, mode 0700: the core's user need not have a writable home, and
    the entries hold broker URLs with passwords. A directory or entry not owned by this user, a symlink,
    or one others may write is never read nor written (another user could otherwise plant settings).
    Everything that fails here fails quietly into parsing the file: the cache is an optimisation only.
    """

    SETTLE_NS = 2_000_000_000
    FORMAT = 1

    def __init__(self, directory: str | None = None) -> None:
        # Checked before every use: ours, mode 0700, no symlink (see the class's note).
        self.directory = directory or f"/tmp/alertq-enqueue-{os.geteuid()}"  # noqa: S108

    def tables(self, path: str) -> dict[str, Any]:
        """The config file's tables (those in CACHED_TABLES at least). Raises ConfigError."""
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                entry = os.path.join(self.directory, f"{st.st_dev:x}-{st.st_ino:x}")
                cached = self._read(entry, identity)
                if cached is not None:
                    return cached
                data = fh.read()
            table = parse_toml(data)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if time.time_ns() - st.st_mtime_ns >= self.SETTLE_NS:
            self._write(entry, identity, table)
        return table

    def _read(self, entry: str, identity: tuple[int, ...]) -> dict[str, Any] | None:
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or st.st_mode & 0o077 or not self._directory_is_ours():
                return None
            # Only a file this user wrote, in a directory only this user can write; marshal builds data
            # (and the shape is checked below), it runs nothing.
            content = marshal.loads(os.read(fd, st.st_size + 1))  # noqa: S302
        except (OSError, ValueError, EOFError, TypeError):
            return None
        finally:
            os.close(fd)
        if not (isinstance(content, tuple) and len(content) == 3 and content[:2] == (self.FORMAT, identity)):
            return None
        tables = content[2]
        return tables if isinstance(tables, dict) else None

    def _directory_is_ours(self) -> bool:
        try:
            st = os.lstat(self.directory)
        except OSError:
            return False
        # S_ISDIR without importing stat: 0o040000 is the directory type.
        return st.st_uid == os.geteuid() and st.st_mode & 0o170777 == 0o040700

    def _write(self, entry: str, identity: tuple[int, ...], table: dict[str, Any]) -> None:
        try:
            blob = marshal.dumps((self.FORMAT, identity, {k: table[k] for k in CACHED_TABLES if k in table}))
        except ValueError:  # a TOML date or time in these tables: marshal cannot hold it
            return
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return
        if not self._directory_is_ours():
            return
        temporary = f"{entry}.{os.getpid()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            return
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.close(fd)
            os.replace(temporary, entry)  # whole entries only, whoever of several writers wins
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass


class LiteConfig:
    """The settings, each read when first needed. Only an ALERTQ_CONFIG that names no file fails at once;
    an unreadable file raises ConfigError from the first setting that needs it."""

    def __init__(self, config_path: str | None = None, cache: SettingsCache | None = None) -> None:
        self._path = config_path or _config_file()
        self._cache = cache or SettingsCache()
        self._table: dict[str, Any] | None = None

    def _section(self, name: str) -> dict[str, Any]:
        if self._table is None:
            self._table = {}
            if self._path:
                self._table = self._cache.tables(self._path)
        section = self._table.get(name, {})
        return section if isinstance(section, dict) else {}

    def spool_dir(self) -> str:
        return str(os.environ.get("ALERTQ_SPOOL__DIR") or self._section("spool").get("dir") or DEFAULT_SPOOL_DIR)

    def broker_urls(self) -> tuple[str, ...]:
        urls_raw = os.environ.get("ALERTQ_BROKER__URLS") or self._section("broker").get("urls") or [DEFAULT_BROKER_URL]
        try:
            return tuple(_split_list(urls_raw))
        except ValueError as exc:
            raise ConfigError(f"broker urls: {exc}") from exc

    def connect_timeout(self) -> float:
        raw = os.environ.get("ALERTQ_BROKER__CONNECT_TIMEOUT") or self._section("broker").get("connect_timeout") or 5.0
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"broker connect_timeout: {str(raw)[:40]!r} is not a number of seconds") from None
