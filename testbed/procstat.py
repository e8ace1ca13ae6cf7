"""Memory and CPU of the testbed's gunicorn workers, read from /proc (Linux).

PSS (proportional set size, /proc/PID/smaps_rollup) is the honest per-worker memory: workers are
forked from the master and share its pages copy-on-write, which RSS counts once per worker.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcUsage:
    pid: int
    rss_mb: float
    pss_mb: float | None  # None when smaps_rollup is unreadable
    cpu_seconds: float  # user + system since the process started
    # Time it was runnable but waited for a CPU (/proc/PID/schedstat): on a busy machine this,
    # not the request's own work, is what stretches its time in system.
    wait_seconds: float | None = None


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (gunicorn's master -> its workers)."""
    kids = PROC / str(pid) / "task" / str(pid) / "children"
    try:
        return [int(p) for p in kids.read_text().split()]
    except (OSError, ValueError):
        pass
    out = []  # kernels without CONFIG_PROC_CHILDREN: scan every process's parent
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return sorted(out)


def usage(pid: int) -> ProcUsage | None:
    """None when the process has gone."""
    base = PROC / str(pid)
    try:
        fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
        status = (base / "status").read_text()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat)
    rss_kb = next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)
    pss = None
    try:
        for line in (base / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
                break
    except OSError:
        pass
    wait = None
    with contextlib.suppress(OSError, IndexError, ValueError):
        wait = int((base / "schedstat").read_text().split()[1]) / 1e9
    return ProcUsage(pid, rss_kb / 1024, pss, cpu, wait)


def workers_usage(master_pid: int) -> list[ProcUsage]:
    return [u for u in (usage(p) for p in children(master_pid)) if u is not None]
