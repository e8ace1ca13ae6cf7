"""The testbed's own error type: an AlbprobeError, so the CLI prints it as one line."""

from __future__ import annotations

from core.errors import AlbprobeError


class TestbedError(AlbprobeError):
    """The testbed could not start or act; names what failed and how to fix it."""

    __test__ = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=2)
