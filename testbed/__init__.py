"""The local stand-in of browser -> ALB -> gunicorn/Django, with fault switches.

Python API (what tests and `albprobe run` use)::

    from testbed import Testbed, TestbedConfig
    with Testbed(TestbedConfig(faults=frozenset({"hang"}))) as tb:
        tb.url, tb.set_fault("target-down", True), tb.wait_for_health("DOWN")

The names are loaded on first use: the testbed's own processes (each gunicorn worker, the relay,
the sidecar) import a submodule of this package and need none of them (0.15 s of CPU each).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.config import FAULTS, TestbedConfig
    from testbed.errors import TestbedError
    from testbed.stack import Testbed

__all__ = ["FAULTS", "Testbed", "TestbedConfig", "TestbedError"]
_HOMES = {
    "FAULTS": "testbed.config",
    "TestbedConfig": "testbed.config",
    "TestbedError": "testbed.errors",
    "Testbed": "testbed.stack",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'testbed' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
