"""What every `alertq` sub-command shares: loading settings with one-line errors, logging set-up."""

from __future__ import annotations

import click
from pydantic import ValidationError

from schemas.settings import Settings


def one_line(text: str) -> str:
    return " ".join(text.split())


def load_settings(configure_logging: bool = True) -> Settings:
    """The settings in force, or exit 1 with one line naming each bad field."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise click.ClickException(one_line(f"invalid settings: {problems}")) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(one_line(f"cannot load settings: {exc}")) from None
    if configure_logging:
        from broker import logs

        logs.configure(settings.log)
    return settings
