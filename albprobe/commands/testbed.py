"""`albprobe testbed` (not implemented yet; registers nothing)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
