"""`albprobe compare --fail-on`: thresholds on what changed, e.g. 'p99_regression>10%',
'proxy_5xx_rate_delta>0.005', 'new_cors_failures>0'. Each measures the worst endpoint (or the
whole run) and is a plain threshold on the change, not on its significance: the judgement
gate covers that."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from analysis.compare.data import PRODUCERS
from analysis.compare.judge import QUANTILES, Figure
from analysis.reports import thresholds as th

# --fail-on metric -> the figure name it reads (max over endpoints and the whole run)
METRICS: dict[str, str] = {
    **{f"{q}_regression": q for q in QUANTILES},
    "latency_shift": "latency_shift",
    **{f"{p}_rate_delta": f"{p}_rate" for p in PRODUCERS},
    "dropped_rate_delta": "dropped_rate",
    "new_cors_failures": "new_cors_failures",
    "regressed_figures": "regressed_figures",
    "new_causes": "new_causes",
}
EXAMPLE = "'p99_regression>10%' or 'proxy_5xx_rate_delta>0.005' or 'new_cors_failures>0'"


@dataclass
class Gate:
    name: str  # what the JUnit test case is called
    passed: bool
    measured: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse(exprs: Sequence[str]) -> list[th.Threshold]:
    return [th.parse(e, metrics=METRICS, example=EXAMPLE) for e in exprs]


def measured(figures: list[Figure], new_causes: int) -> dict[str, float | None]:
    """figure name -> its worst change over every scope (None when nowhere measured)."""
    out: dict[str, float | None] = {}
    for f in figures:
        if f.effect is None:
            continue
        cur = out.get(f.name)
        out[f.name] = f.effect if cur is None else max(cur, f.effect)
    out["regressed_figures"] = float(sum(f.judgement == "regressed" for f in figures))
    out["new_causes"] = float(new_causes)
    return out


def evaluate(thresholds: list[th.Threshold], values: dict[str, float | None]) -> list[Gate]:
    gates = []
    for t in thresholds:
        hit, v = t.breached(values)
        shown = "unmeasured" if v is None else f"{v:.4g}"
        gates.append(
            Gate(t.text, not hit, v, f"{t.text}: measured {shown}" + (" - breached" if hit else ""))
        )
    return gates
