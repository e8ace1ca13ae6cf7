"""The testbed's own error type (the testbed imports nothing from the other rooms)."""

from __future__ import annotations


class TestbedError(Exception):
    """The testbed could not start or act; names what failed and how to fix it."""

    __test__ = False
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
