"""The `albprobe` command: thin orchestration of probes/, analysis/ and testbed/.

Each sub-command lives in albprobe/commands/<name>.py and registers itself on the app; heavy
imports (locust, boto3, duckdb, matplotlib) happen inside the command bodies so that `--help`
stays fast and locust's gevent monkey-patching never reaches the CLI process.
"""

from __future__ import annotations

import sys

import typer
from typer._click.exceptions import ClickException, UsageError

from albprobe import __version__
from albprobe.commands import COMMAND_MODULES

app = typer.Typer(
    name="albprobe",
    help="Prove whether browser 'CORS errors' are really ALB 502s: probe, load, check AWS, analyze.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"albprobe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """albprobe: synthetic traffic and load probe for a Django API behind an AWS ALB."""


for _module in COMMAND_MODULES:
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: every error becomes one line on stderr, with its exit code."""
    try:
        # In non-standalone mode click returns a command's exit code instead of raising it.
        rv = app(args=argv, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except UsageError as exc:  # unknown command/option, bad value: one line, not click's block
        where = f"`{exc.ctx.command_path} --help`" if exc.ctx is not None else "`albprobe --help`"
        typer.echo(f"albprobe: error: {exc.format_message()} (see {where})", err=True)
        return exc.exit_code or 2
    except ClickException as exc:  # AlbprobeError (TestbedError, ConfigError, ...) included
        typer.echo(f"albprobe: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("albprobe: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("albprobe: interrupted", err=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
