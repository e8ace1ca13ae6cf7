"""`--fail-on` thresholds for a pre-release gate: `5xx_rate>0.01`, `p99>800`, `proxy_502>=1`."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from analysis.figures import Figures
from core.errors import AlbprobeError

# metric name on the command line -> figure key (latencies in ms, rates as fractions)
METRICS: dict[str, str] = {
    "5xx_rate": "5xx_rate",
    "error_rate": "error_rate",
    "failure_rate": "failure_rate",
    "cors_fail_rate": "app_cors_fail_rate",
    "p50": "p50_ms",
    "p90": "p90_ms",
    "p99": "p99_ms",
    "p999": "p999_ms",
    "max": "max_ms",
    "co_p99": "co_p99_ms",
    "proxy_5xx": "proxy_5xx",
    "proxy_502": "proxy_502",
    "proxy_503": "proxy_503",
    "proxy_504": "proxy_504",
    "server_5xx": "server_5xx",
    "network_errors": "network",
    "cors_fail": "app_cors_fail",
    "alb_5xx": "alb_elb_5xx",
    "alb_502": "alb_elb_502",
}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_EXPR = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|==|>|<)\s*([0-9.]+)\s*(%|ms|s)?\s*$")


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: str
    value: float
    text: str

    def breached(self, figures: Figures | Mapping[str, Any]) -> tuple[bool, float | None]:
        v = figures.get(METRICS[self.metric])  # Figures.get: an unknown name is a KeyError
        if v is None:
            return False, None
        return _OPS[self.op](float(v), self.value), float(v)


def parse(expr: str) -> Threshold:
    m = _EXPR.match(expr)
    if not m or m.group(1) not in METRICS:
        raise AlbprobeError(
            f"--fail-on {expr!r}: cannot read this threshold",
            hint=f"write METRIC OP VALUE, e.g. '5xx_rate>0.01' or 'p99>800'; metrics: {', '.join(METRICS)}",
        )
    name, op, num, unit = m.groups()
    value = float(num)
    if unit == "%":
        value /= 100
    elif unit == "s":
        value *= 1000
    return Threshold(name, op, value, expr.strip())


def evaluate(
    thresholds: list[Threshold], figures: Figures | Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One row per threshold: whether it was breached and the measured value (None = unmeasured)."""
    out = []
    for t in thresholds:
        hit, val = t.breached(figures)
        out.append({"threshold": t.text, "value": val, "breached": hit})
    return out
