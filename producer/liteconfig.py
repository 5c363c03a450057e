"""The settings alertq-enqueue needs, read with the standard library only.

The enqueue command runs once per contact per notification, thousands of times in an alert storm, so it
must not pay for importing pydantic. It needs two settings: the spool directory and, for the direct
path, the broker URLs. They are read from the same places as `schemas.settings.Settings` reads them
(env `ALERTQ_SPOOL__DIR` / `ALERTQ_BROKER__URLS` over the TOML file over the defaults); a test keeps
the two readers in agreement.

Each setting is read when first asked for, and the TOML file is parsed only when a setting is not in the
environment: with `ALERTQ_SPOOL__DIR` set (or `--spool-dir`), an enqueue for a live relay never imports
tomllib, which costs about as much as everything else that enqueue does.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_SPOOL_DIR = "var/spool"
CONFIG_SEARCH_PATH = ("alertq.toml", "/etc/alertq/alertq.toml")


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
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


class LiteConfig:
    """The settings, each read when first needed. Only an ALERTQ_CONFIG that names no file fails at once;
    an unreadable file raises ConfigError from the first setting that needs it."""

    def __init__(self, config_path: str | None = None) -> None:
        self._path = config_path or _config_file()
        self._table: dict[str, Any] | None = None

    def _section(self, name: str) -> dict[str, Any]:
        if self._table is None:
            self._table = {}
            if self._path:
                import tomllib

                try:
                    with open(self._path, "rb") as fh:
                        self._table = tomllib.load(fh)
                except (OSError, tomllib.TOMLDecodeError) as exc:
                    raise ConfigError(f"cannot read config file {self._path}: {exc}") from exc
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
