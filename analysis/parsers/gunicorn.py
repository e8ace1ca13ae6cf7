"""gunicorn's error log -> worker events (same vocabulary as the run directory's events table).

Exact strings (gunicorn/arbiter.py and glogging.py, 21.x-27.x):
``[CRITICAL] WORKER TIMEOUT (pid:N)``, ``[ERROR] Worker (pid:N) was sent SIGKILL! Perhaps out of
memory?``, ``Worker (pid:N) exited with code N``, ``Booting worker with pid: N``,
``Starting gunicorn X``, ``Shutting down: Master``, ``Autorestarting worker after current request.``
(--max-requests; logged by the worker, so its pid is the worker's). Timestamps look like
``[2026-11-26 13:00:00 +0000]``. The file is small (events, not requests): a streaming Python
parser is enough. Tracebacks and other lines are counted as "other", never fatal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from analysis.parsers.common import ParseStats

_HEAD = re.compile(
    r"^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?: ([+-]\d{4}))?\] \[(\d+)\] \[(\w+)\] (.*)$"
)
_LOOKS_LIKE_ENTRY = re.compile(r"^\[\d{4}-")
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("worker_timeout", re.compile(r"WORKER TIMEOUT \(pid:(\d+)\)")),
    ("worker_killed", re.compile(r"Worker \(pid:(\d+)\) was sent (SIG\w+)")),
    ("worker_exit", re.compile(r"Worker \(pid:(\d+)\) exited with code:? ?(-?\d+)")),
    ("worker_boot", re.compile(r"Booting worker with pid: (\d+)")),
    # max-requests recycling; logged by the worker itself, so the line's pid is the worker's
    ("worker_recycled", re.compile(r"Autorestarting worker after current request")),
    ("master_start", re.compile(r"Starting gunicorn")),
    ("master_stop", re.compile(r"Shutting down: Master")),
    # Not an event of the contract: the worker class gunicorn really ran (the testbed switches it).
    ("worker_class", re.compile(r"Using worker: (\S+)")),
]


@dataclass(frozen=True)
class GunicornEvent:
    ts: float
    kind: str
    pid: int | None
    detail: str


def parse_line(line: str) -> GunicornEvent | None | bool:
    """An event; False for a malformed entry; None for a line that is not an event."""
    m = _HEAD.match(line.rstrip("\r\n"))
    if not m:
        return False if _LOOKS_LIKE_ENTRY.match(line) else None
    stamp, zone, master_pid, _level, msg = m.groups()
    try:
        ts = datetime.strptime(f"{stamp} {zone or '+0000'}", "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return False
    for kind, rx in _RULES:
        hit = rx.search(msg)
        if hit:
            if kind == "worker_class":
                return GunicornEvent(ts, kind, int(master_pid), hit.group(1))
            pid = int(hit.group(1)) if hit.groups() else int(master_pid)
            return GunicornEvent(ts, kind, pid, msg.strip())
    return None


def iter_events(path: Path, stats: ParseStats) -> Iterator[GunicornEvent]:
    stats.files += 1
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            stats.lines += 1
            ev = parse_line(line)
            if ev is False:
                stats.malformed += 1
                stats.note_example(line)
            elif ev is None:
                stats.other += 1
            else:
                assert isinstance(ev, GunicornEvent)
                stats.parsed += 1
                yield ev


def load(paths: list[Path]) -> tuple[list[GunicornEvent], ParseStats]:
    stats = ParseStats("gunicorn")
    events: list[GunicornEvent] = []
    for p in paths:
        events.extend(iter_events(p, stats))
    return events, stats
