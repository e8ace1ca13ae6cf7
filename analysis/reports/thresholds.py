"""`--fail-on` thresholds for a pre-release gate: `5xx_rate>0.01`, `p99>800`, `proxy_502>=1`.

The same grammar states an SLO for `albprobe tune` (`--slo 'p99<800ms'`): one parser, where a
gate is breached when its expression is true and an SLO holds when its expression is true.
"""

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
    key: str = ""  # the figure key the metric names (METRICS[metric] when not given)

    def measured(self, figures: Figures | Mapping[str, Any]) -> float | None:
        v = figures.get(self.key or METRICS[self.metric])
        return None if v is None else float(v)

    def true_of(self, figures: Figures | Mapping[str, Any]) -> tuple[bool | None, float | None]:
        """Whether the expression is true of the figures (None when the metric is unmeasured)."""
        v = self.measured(figures)
        return (None, None) if v is None else (_OPS[self.op](v, self.value), v)

    def breached(self, figures: Figures | Mapping[str, Any]) -> tuple[bool, float | None]:
        hit, v = self.true_of(figures)
        return bool(hit), v


def parse(
    expr: str,
    *,
    flag: str = "--fail-on",
    metrics: dict[str, str] | None = None,
    example: str = "'5xx_rate>0.01' or 'p99>800'",
) -> Threshold:
    """METRIC OP VALUE[unit]: units %, ms, s (latencies are kept in ms, rates as fractions)."""
    names = METRICS if metrics is None else metrics
    m = _EXPR.match(expr)
    if not m or m.group(1) not in names:
        raise AlbprobeError(
            f"{flag} {expr!r}: cannot read this {'SLO' if flag == '--slo' else 'threshold'}",
            hint=f"write METRIC OP VALUE, e.g. {example}; metrics: {', '.join(names)}",
        )
    name, op, num, unit = m.groups()
    try:
        value = float(num)
    except ValueError:
        raise AlbprobeError(
            f"{flag} {expr!r}: {num!r} is not a number", hint=f"e.g. {example}"
        ) from None
    if unit == "%":
        value /= 100
    elif unit == "s":
        value *= 1000
    return Threshold(name, op, value, expr.strip(), names[name])


def evaluate(
    thresholds: list[Threshold], figures: Figures | Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One row per threshold: whether it was breached and the measured value (None = unmeasured)."""
    out = []
    for t in thresholds:
        hit, val = t.breached(figures)
        out.append({"threshold": t.text, "value": val, "breached": hit})
    return out
