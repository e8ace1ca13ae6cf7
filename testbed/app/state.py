"""The fault-state file shared by the testbed orchestrator and the Django app.

Settings-level faults (cors-misconfig, health-host) are read when a worker imports settings, like
a real deploy; the orchestrator rewrites the file and sends gunicorn SIGHUP to apply them. The
request-level fault (hang) is re-read per request, by mtime, so it toggles instantly.
"""

from __future__ import annotations

import json
import os
from typing import Any

STATE_ENV = "ALBPROBE_TESTBED_STATE"

_cache: tuple[float, dict[str, Any]] = (-1.0, {})


def read_state() -> dict[str, Any]:
    global _cache
    path = os.environ.get(STATE_ENV)
    if not path:
        return {}
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return {}
    if mtime != _cache[0]:
        with open(path, encoding="utf-8") as fh:
            _cache = (mtime, json.load(fh))
    return _cache[1]


def fault_on(name: str) -> bool:
    return name in read_state().get("faults", ())
