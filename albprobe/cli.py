"""The `albprobe` command: thin orchestration of probes/, analysis/ and testbed/.

Each sub-command lives in albprobe/commands/<name>.py and registers itself on the app; heavy
imports (locust, boto3, duckdb, matplotlib) happen inside the command bodies so that `--help`
stays fast and locust's gevent monkey-patching never reaches the CLI process.
"""

from __future__ import annotations

import sys

import typer

from albprobe import __version__
from albprobe.commands import COMMAND_MODULES
from core.errors import AlbprobeError
from testbed.errors import TestbedError

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
    """Console-script entry point: every AlbprobeError becomes one line on stderr."""
    try:
        # In non-standalone mode click returns a command's exit code instead of raising it.
        rv = app(args=argv, standalone_mode=False)
        if isinstance(rv, int):
            return rv
    except (AlbprobeError, TestbedError) as exc:
        typer.echo(f"albprobe: error: {exc.one_line()}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("albprobe: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("albprobe: interrupted", err=True)
        return 130
    except SystemExit as exc:  # click usage errors in standalone_mode=False still raise these
        return int(exc.code or 0)
    except Exception as exc:
        # Usage errors (unknown command/option, bad value). typer vendors its own click, so the
        # exception class is recognised by shape: a message and an exit code.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            where = f"`{ctx.command_path} --help`" if ctx is not None else "`albprobe --help`"
            typer.echo(f"albprobe: error: {exc.format_message()} (see {where})", err=True)
            return int(exc.exit_code) or 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
