"""`alertq config check`: the settings in force, validated, secrets masked."""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from alertq.common import load_settings
from schemas.routing import RoutingError, load_routing
from schemas.settings import BrokerSettings, Settings, config_file, mask_url


@click.group()
def config() -> None:
    """Inspect the settings in force."""


@config.command("check")
def check() -> None:
    """Validate the settings and print them as JSON, secrets masked.

    \b
    Exit status 0 when valid, 1 with one line per problem when not (a secret is never shown).
    Besides each value's form it checks that every ca_bundle set is a file of CA certificates.
    Example:
      ALERTQ_CONFIG=/etc/alertq/alertq.toml alertq config check
    """
    settings = load_settings(configure_logging=False)
    problems = ca_bundle_problems(settings)
    if problems:
        for problem in problems:
            click.echo(f"Error: {problem}", err=True)
        sys.exit(1)
    routing = routing_summary(settings) if settings.routing_file is not None else None
    click.echo(json.dumps(effective_settings(settings), indent=2))
    click.echo(f"settings are valid (config file: {config_file() or 'none, defaults and environment'})", err=True)
    if routing is not None:
        click.echo(routing, err=True)


def routing_summary(settings: Settings) -> str:
    """One line on the routing file, or exit 1 with its one-line error."""
    assert settings.routing_file is not None
    try:
        routing = load_routing(settings.routing_file, set(type(settings.channels).model_fields))
    except RoutingError as exc:
        raise click.ClickException(str(exc)) from None
    return (
        f"routing file {settings.routing_file} is valid: {len(routing.contacts)} contacts, "
        f"{len(routing.groups)} groups, {len(routing.policies)} policies ({', '.join(routing.policies) or 'none'})"
    )


def ca_bundle_problems(settings: Settings) -> list[str]:
    """One line per `ca_bundle` that is set but cannot be used: every HTTPS or TLS call through it would
    fail at delivery time, so this is said here. Only this command looks at files: settings are
    validated wherever they load, and a file may rightly exist on the host that runs a process only."""
    problems = []
    for path, value in _values_named("ca_bundle", settings, ()):
        if value is None:
            continue
        setting = ".".join(path)
        bundle = Path(value)
        if not bundle.is_file():
            problems.append(f"{setting}: {bundle} is not a file")
            continue
        try:
            ssl.create_default_context(cafile=str(bundle))
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"{setting}: {bundle} holds no usable CA certificates ({exc.__class__.__name__})")
    return problems


def _values_named(name: str, model: BaseModel, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for field in type(model).model_fields:
        value = getattr(model, field)
        if isinstance(value, BaseModel):
            yield from _values_named(name, value, (*prefix, field))
        elif field == name:
            yield (*prefix, field), value


def effective_settings(settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = _mask(settings.model_dump(mode="python"))
    data["broker"]["urls"] = settings.broker.masked_urls
    data["state_store"] = mask_url(settings.state_store)
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


@config.command("reference")
def reference() -> None:
    """Print every setting as a Markdown table: environment variable, TOML key, default, meaning.

    \b
    The README's configuration reference is this output (a test keeps them equal):
      alertq config reference > /tmp/settings.md
    """
    click.echo(settings_reference())


def settings_reference() -> str:
    lines = ["| environment variable | TOML key | default | meaning |", "|---|---|---|---|"]
    for path, field_info, default in _walk(Settings, ()):
        env = "ALERTQ_" + "__".join(p.upper() for p in path)
        toml = f"[{'.'.join(path[:-1])}] {path[-1]}" if len(path) > 1 else path[0]
        meaning = " ".join((field_info.description or "").split()).replace("|", "\\|")
        # The default broker URL's password is the well-known guest one; show where it points, masked anyway.
        shown = f"`{BrokerSettings().masked_urls[0]}`" if path == ("broker", "urls") else _show_default(default)
        lines.append(f"| `{env}` | `{toml}` | {shown} | {meaning} |")
    return "\n".join(lines)


def _walk(
    model: type[BaseModel], prefix: tuple[str, ...], defaults: BaseModel | None = None
) -> Iterator[tuple[tuple[str, ...], FieldInfo, Any]]:
    """Every leaf setting with its default; a section's defaults are those of the section as its parent
    makes it (Slack's `rate_limit` is 1/s, not the 10/s of a bare `RateLimit`)."""
    for name, field_info in model.model_fields.items():
        path = (*prefix, name)
        annotation = field_info.annotation
        default = field_info.get_default(call_default_factory=True) if defaults is None else getattr(defaults, name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation, path, default if isinstance(default, BaseModel) else None)
            continue
        yield path, field_info, default


def _show_default(value: Any) -> str:
    value = _mask(value)
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(str(v) for v in value)}`"
    return f"`{value}`"
