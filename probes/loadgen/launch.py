"""The Locust process albprobe starts (``python -m probes.loadgen.launch`` + Locust's arguments):
Locust's own main, with the installed packages' entry points read once.

At import Locust monkey-patches the standard library through gevent, and gevent announces each
patch to plugins: 25 calls to ``importlib.metadata.entry_points()``, each of which reads every
installed distribution's metadata again. That was a quarter of a second of CPU in every Locust
process (each run, each worker; bench/bench_process_starts.py). Here the first read is kept for the process's life; nothing is
installed while a run runs. A plain ``locust -f locustfiles/browser.py`` works as before.
"""

from __future__ import annotations

import importlib.metadata
import sys
from typing import Any


def read_entry_points_once() -> None:
    every = importlib.metadata.entry_points()

    def entry_points(**params: Any) -> importlib.metadata.EntryPoints:
        return every.select(**params) if params else every

    importlib.metadata.entry_points = entry_points  # type: ignore[assignment]


def main() -> None:
    read_entry_points_once()
    from locust.main import main as locust_main  # patches the standard library: after the above

    sys.argv[0] = "locust"
    locust_main()


if __name__ == "__main__":
    main()
