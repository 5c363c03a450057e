"""What every `alertq` sub-command shares: loading settings with one-line errors, logging set-up."""

from __future__ import annotations

from typing import IO, Any

import click
from pydantic import ValidationError

from schemas.settings import Settings


def one_line(text: str) -> str:
    return " ".join(text.split())


class InvalidSettings(click.ClickException):
    """Settings that do not validate: shown as one `Error: invalid settings: <setting>: <why>` line per
    problem; `message` holds them all on one line for callers that report a single line (alertq status)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(one_line(f"invalid settings: {'; '.join(problems)}"))
        self.problems = [one_line(problem) for problem in problems]

    def show(self, file: IO[Any] | None = None) -> None:
        for problem in self.problems:
            click.echo(f"Error: invalid settings: {problem}", file=file, err=file is None)


def settings_problems(exc: ValidationError) -> list[str]:
    """`<setting>: <why>` per error. pydantic's input is left out: it may be a secret."""
    return [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)]


def load_settings(configure_logging: bool = True) -> Settings:
    """The settings in force, or exit 1 with one line per bad field, each naming it."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise InvalidSettings(settings_problems(exc)) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(one_line(f"cannot load settings: {exc}")) from None
    if configure_logging:
        from broker import logs

        logs.configure(settings.log)
    return settings
