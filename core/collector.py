"""The collector interface of `albprobe run`: whatever gathers evidence next to the load.

A collector starts before the load (after the target is up) and stops after it (before the testbed
stops), in the order the registry (albprobe/collectors.py) gives. It says what it wrote: files in
the run directory and its entries for run.json. Trouble while collecting is recorded in those
entries, never raised: a collector must not cost the run its data. Implementations live beside
their probes (probes/health_poller.py, probes/aws/run_collectors.py,
probes/cors_scan_collector.py), so they need nothing from the CLI.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import Config
from core.rundir import RunDir


@dataclass(frozen=True)
class RunContext:
    """What a collector may use: the run directory, the effective config, the URL the load goes to,
    when the run started (epoch s) and a sink for one-line console messages."""

    rundir: RunDir
    config: Config
    url: str
    started_at: float
    log: Callable[[str], None] = lambda line: None


@dataclass
class CollectorResult:
    """What one collector wrote. ``files``: paths relative to the run directory. ``record``: its
    run.json entries; a dict value is merged into an existing dict of the same key (several AWS
    collectors share "aws")."""

    name: str
    files: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


class Collector(ABC):
    """start() before the load, stop() after it, result() for what was written so far."""

    name: str = "collector"

    def start(self, run: RunContext) -> None:  # noqa: B027 - most collectors do something here
        """Before the load (the target is up)."""

    def stop(self, run: RunContext) -> None:  # noqa: B027 - one-shot collectors may not need it
        """After the load."""

    @abstractmethod
    def result(self) -> CollectorResult: ...


def relative_files(rundir: RunDir, paths: Iterable[Path]) -> list[str]:
    """Run-directory relative names of the files a collector wrote."""
    return sorted(str(Path(p).relative_to(rundir.path)) for p in paths)


def merge_record(meta: dict[str, Any], record: dict[str, Any]) -> None:
    """Merge one collector's run.json entries into the run's metadata (see CollectorResult)."""
    for key, value in record.items():
        if isinstance(value, dict) and isinstance(meta.get(key), dict):
            meta[key].update(value)
        else:
            meta[key] = value
