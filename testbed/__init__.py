"""The local stand-in of browser -> ALB -> gunicorn/Django, with fault switches.

Python API (what tests and `albprobe run` use)::

    from testbed import Testbed, TestbedConfig
    with Testbed(TestbedConfig(faults=frozenset({"hang"}))) as tb:
        tb.url, tb.set_fault("target-down", True), tb.wait_for_health("DOWN")
"""

from testbed.config import FAULTS, TestbedConfig
from testbed.errors import TestbedError
from testbed.stack import Testbed

__all__ = ["FAULTS", "Testbed", "TestbedConfig", "TestbedError"]
