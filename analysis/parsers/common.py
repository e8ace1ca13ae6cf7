"""Shared parsing pieces: per-input parse statistics and the DuckDB "one line, one row" reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# A byte that never occurs in text logs: used as the CSV delimiter so that DuckDB's parallel CSV
# reader hands us whole lines (quote and escape disabled).
LINE_DELIM = "\x01"


@dataclass
class ParseStats:
    """What a parser read from one kind of input; malformed lines are counted, never fatal."""

    input: str  # "alb", "haproxy", "gunicorn"
    files: int = 0
    lines: int = 0
    parsed: int = 0
    malformed: int = 0
    other: int = 0  # recognised non-record lines (startup notices, tracebacks)
    truncated_files: list[str] = field(default_factory=list)  # read up to a cut
    unreadable_files: list[str] = field(default_factory=list)  # not one line (corrupt .gz)
    copies: list[str] = field(default_factory=list)  # "copy = original": read once (alb.py)
    examples: list[str] = field(default_factory=list)  # a few malformed lines, for the report
    # the span of the well-formed entries read, before any --since/--until window (epoch s):
    # an empty window says where the logs are (alb.py)
    first_ts: float | None = None
    last_ts: float | None = None

    def note_example(self, line: str, limit: int = 3) -> None:
        if len(self.examples) < limit:
            self.examples.append(line[:200])

    def as_dict(self) -> dict[str, object]:
        return {
            "input": self.input,
            "files": self.files,
            "lines": self.lines,
            "parsed": self.parsed,
            "malformed": self.malformed,
            "other": self.other,
            "truncated_files": list(self.truncated_files),
            "unreadable_files": list(self.unreadable_files),
            "copies": list(self.copies),
            "examples": list(self.examples),
        }


def sql_str(value: str) -> str:
    """A SQL string literal (DuckDB has no backslash escapes in standard strings)."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(paths: Sequence[Path | str]) -> str:
    return "[" + ", ".join(sql_str(str(p)) for p in paths) + "]"


def lines_source(paths: Sequence[Path | str]) -> str:
    """A DuckDB table expression yielding one VARCHAR column ``line`` per text line (gz ok)."""
    return (
        f"read_csv({sql_list(paths)}, columns={{'line': 'VARCHAR'}}, delim={sql_str(LINE_DELIM)}, "
        "quote='', escape='', header=false, auto_detect=false, strict_mode=false, "
        "ignore_errors=true, null_padding=true, compression='auto', filename=true)"
    )
