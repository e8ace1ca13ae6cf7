"""The SLO, the knee, and the next arrival rate to try: pure functions of per-step figures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.capacity.steps import StepFigures
from analysis.reports import thresholds as th

# SLO metrics: the --fail-on grammar, plus the open model's dropped-iteration share.
SLO_METRICS: dict[str, str] = {
    "p50": "p50_ms",
    "p99": "p99_ms",
    "co_p99": "co_p99_ms",
    "5xx_rate": "5xx_rate",
    "error_rate": "error_rate",
    "failure_rate": "failure_rate",
    "dropped_rate": "dropped_rate",
}
# A step sustains its load when it completed at least this share of the offered rate.
SUSTAINED_SHARE = 0.9


def parse_slo(exprs: Sequence[str]) -> list[th.Threshold]:
    """`--slo 'p99<800ms' --slo '5xx_rate<0.01'`: the --fail-on grammar, read as what must hold."""
    if not exprs:
        exprs = ["p99<1s", "5xx_rate<0.01"]
    return [
        th.parse(e, flag="--slo", metrics=SLO_METRICS, example="'p99<800ms' or '5xx_rate<0.01'")
        for e in exprs
    ]


@dataclass(frozen=True, slots=True)
class SloCheck:
    holds: bool
    failed: tuple[str, ...]  # one phrase per broken condition, with the measured value

    def to_json(self) -> dict[str, Any]:
        return {"holds": self.holds, "failed": list(self.failed)}


def check_slo(step: StepFigures, slo: Sequence[th.Threshold]) -> SloCheck:
    """The SLO holds at a step when every expression is true, the step ran to completion, and the
    step sustained the offered rate (an overloaded open model drops what it cannot send)."""
    failed: list[str] = []
    figs = step.figures()
    for t in slo:
        ok, v = t.true_of(figs)
        if ok is None:
            failed.append(f"{t.text}: not measured")
        elif not ok:
            failed.append(f"{t.text}: measured {_fmt(t.key, v)}")
    if step.status != "complete":
        failed.append(
            f"step {step.status}" + (f" ({step.status_reason})" if step.status_reason else "")
        )
    x = step.throughput_rps
    if x is None or x < SUSTAINED_SHARE * step.offered_rps:
        failed.append(
            f"not sustained: {x or 0:.1f} of {step.offered_rps:g} req/s completed"
            f" (< {SUSTAINED_SHARE:.0%})"
        )
    return SloCheck(not failed, tuple(failed))


def _fmt(key: str, v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.0f} ms" if key.endswith("_ms") else f"{v:.4g}"


@dataclass(frozen=True, slots=True)
class Knee:
    """The highest sustained throughput at which the SLO held, and the step that broke it."""

    step: StepFigures | None
    broke: StepFigures | None
    checks: tuple[SloCheck, ...] = field(default=())
    statement: str = ""

    @property
    def rps(self) -> float | None:
        return self.step.throughput_rps if self.step else None

    @property
    def bounded(self) -> bool:
        """False when no step broke the SLO: the knee is a lower bound."""
        return self.broke is not None


def find_knee(steps: Sequence[StepFigures], slo: Sequence[th.Threshold]) -> Knee:
    """Steps may come in any order (a bisection revisits rates); they are judged by offered rate."""
    order = sorted(steps, key=lambda s: s.offered_rps)
    checks = [check_slo(s, slo) for s in order]
    holding = [s for s, c in zip(order, checks, strict=True) if c.holds]
    broken = [(s, c) for s, c in zip(order, checks, strict=True) if not c.holds]
    by_offered = {id(s): c for s, c in zip(order, checks, strict=True)}
    all_checks = tuple(by_offered[id(s)] for s in steps)
    if not order:
        return Knee(None, None, all_checks, "no step ran")
    if not holding:
        s, c = broken[0]
        return Knee(
            None,
            s,
            all_checks,
            f"the target misses the SLO even at the lowest step ({s.offered_rps:g} req/s: "
            f"{'; '.join(c.failed)}); lower --start-rate or relax --slo",
        )
    best = max(holding, key=lambda s: s.throughput_rps or 0.0)
    above = [s for s, _ in broken if s.offered_rps > best.offered_rps]
    broke = above[0] if above else None
    if broke is None:
        text = (
            f"the SLO held at every step; the knee is at least {best.throughput_rps:.1f} req/s "
            "(raise --max-rate or the step budget to find it)"
        )
    else:
        c = by_offered[id(broke)]
        text = (
            f"knee {best.throughput_rps:.1f} req/s (offered {best.offered_rps:g}); "
            f"the SLO broke at {broke.offered_rps:g} req/s: {'; '.join(c.failed)}"
        )
    return Knee(best, broke, all_checks, text)


def next_rate(
    tried: Sequence[tuple[float, bool]],
    *,
    start: float,
    growth: float,
    max_rate: float,
    resolution: float,
    budget: int,
) -> float | None:
    """The next arrival rate to try, or None when done.

    ``tried`` is (offered rate, SLO held) in the order run. Grow geometrically from ``start`` until
    a step breaks (or ``max_rate``); then bisect (geometric mean) between the best holding and
    the lowest breaking rate until they are within ``resolution`` (relative) of each other."""
    if len(tried) >= budget:
        return None
    if not tried:
        return min(start, max_rate)
    good = [r for r, ok in tried if ok]
    bad = [r for r, ok in tried if not ok]
    if not good:
        return None  # the lowest step already broke: nothing below to search from here
    lo = max(good)
    hi_candidates = [r for r in bad if r > lo]
    if not hi_candidates:
        if lo >= max_rate:
            return None
        return min(lo * growth, max_rate)
    hi = min(hi_candidates)
    if hi / lo <= 1 + resolution:
        return None
    return round(math.sqrt(lo * hi), 2)
