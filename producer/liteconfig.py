"""The settings alertq-enqueue needs, read with the standard library only.

The enqueue command runs once per contact per notification, thousands of times in an alert storm, so it
must not pay for importing pydantic. It needs two settings: the spool directory and, for the direct
path, the broker URLs. They are read from the same places as `schemas.settings.Settings` reads them
(env `ALERTQ_SPOOL__DIR` / `ALERTQ_BROKER__URLS` over the TOML file over the defaults); a test keeps
the two readers in agreement.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from typing import Any

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_SPOOL_DIR = "var/spool"
CONFIG_SEARCH_PATH = ("alertq.toml", "/etc/alertq/alertq.toml")


@dataclass(frozen=True)
class LiteConfig:
    spool_dir: str
    broker_urls: tuple[str, ...]
    connect_timeout: float


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


def load(config_path: str | None = None) -> LiteConfig:
    path = config_path or _config_file()
    table: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                table = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    spool = table.get("spool", {})
    broker = table.get("broker", {})
    spool_dir = os.environ.get("ALERTQ_SPOOL__DIR") or spool.get("dir") or DEFAULT_SPOOL_DIR
    urls_raw = os.environ.get("ALERTQ_BROKER__URLS") or broker.get("urls") or [DEFAULT_BROKER_URL]
    timeout = float(os.environ.get("ALERTQ_BROKER__CONNECT_TIMEOUT") or broker.get("connect_timeout") or 5.0)
    try:
        urls = tuple(_split_list(urls_raw))
    except ValueError as exc:
        raise ConfigError(f"broker urls: {exc}") from exc
    return LiteConfig(spool_dir=str(spool_dir), broker_urls=urls, connect_timeout=timeout)
