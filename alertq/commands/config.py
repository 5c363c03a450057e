"""`alertq config check`: the settings in force, validated, secrets masked."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import SecretStr

from alertq.common import load_settings
from schemas.settings import Settings, config_file


@click.group()
def config() -> None:
    """Inspect the settings in force."""


@config.command("check")
def check() -> None:
    """Validate the settings and print them as JSON, secrets masked.

    \b
    Exit status 0 when valid, 1 with a one-line reason when not. Example:
      ALERTQ_CONFIG=/etc/alertq/alertq.toml alertq config check
    """
    settings = load_settings(configure_logging=False)
    click.echo(json.dumps(effective_settings(settings), indent=2))
    click.echo(f"settings are valid (config file: {config_file() or 'none, defaults and environment'})", err=True)


def effective_settings(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = _mask(settings.model_dump(mode="python"))
    data["broker"]["urls"] = settings.broker.masked_urls
    return data


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
