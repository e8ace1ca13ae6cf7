"""Import a module on a daemon thread while this one waits on DuckDB, which releases the GIL:
a report's imports (matplotlib: about half a second) then cost no wall time. The import that
needs the module later finds it loaded, or waits for the thread to finish it (the import lock)."""

from __future__ import annotations

import contextlib
import importlib
import threading


def _load(module: str) -> None:
    # a failed import is raised again, on the main thread, by the import that needs the module
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def in_background(module: str) -> None:
    threading.Thread(target=_load, args=(module,), daemon=True, name=f"preload {module}").start()
