"""The one error type the CLI turns into a one-line message (never a traceback)."""

from __future__ import annotations

# typer vendors its own copy of click; its ClickException is the class the CLI's click handles.
from typer._click.exceptions import ClickException


class AlbprobeError(ClickException):
    """A user-facing failure: names the input that was wrong and how to fix it.

    ``exit_code`` follows the CLI convention: 1 = a check failed, 2 = could not run / bad input.
    """

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def format_message(self) -> str:  # what click prints after "Error: " in standalone mode
        return self.one_line()

    def __str__(self) -> str:
        return self.message


class ConfigError(AlbprobeError):
    """A bad value in albprobe.toml or on the command line."""
