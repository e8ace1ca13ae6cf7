"""A tuning session's result: passes (steps, knee, USL fit), the recommendation and its proof,
as one record with a JSON form (tune.json) and the figures `--fail-on` gates read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.capacity.knee import Knee, find_knee
from analysis.capacity.recommend import Recommendation
from analysis.capacity.steps import StepFigures
from analysis.capacity.usl import UslFit, fit_usl
from analysis.reports import thresholds as th

TUNE_JSON_VERSION = 1

# --fail-on metrics of `albprobe tune` -> keys of TuneResult.gate_figures()
GATE_METRICS: dict[str, str] = {
    "knee_rps": "knee_rps",
    "knee_p99": "knee_p99_ms",
    "after_knee_rps": "after_knee_rps",
    "after_p99": "after_target_p99_ms",
    "after_5xx_rate": "after_target_5xx_rate",
    "usl_sigma": "usl_sigma",
    "usl_kappa": "usl_kappa",
    "usl_r2": "usl_r2",
    "usl_peak_concurrency": "usl_peak_concurrency",
    "recommended_capacity": "recommended_capacity_rps",
}


def parse_gates(exprs: Sequence[str]) -> list[th.Threshold]:
    return [
        th.parse(e, metrics=GATE_METRICS, example="'knee_rps<200' or 'usl_kappa>0.01'")
        for e in exprs
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class PassResult:
    """One pass of steps at one gunicorn setting."""

    name: str  # "before" (the current setting) or "after" (the recommended one)
    capacity: dict[str, Any]
    steps: tuple[StepFigures, ...]
    knee: Knee
    fit: UslFit
    statements: tuple[str, ...] = ()

    def step_at(self, offered: float) -> StepFigures | None:
        return next((s for s in self.steps if abs(s.offered_rps - offered) < 1e-6), None)

    def to_json(self) -> dict[str, Any]:
        k = self.knee
        return {
            "name": self.name,
            "capacity": self.capacity,
            "knee": {
                "rps": k.rps,
                "offered_rps": k.step.offered_rps if k.step else None,
                "p99_ms": k.step.p99_ms if k.step else None,
                "rate_5xx": k.step.rate_5xx if k.step else None,
                "bounded": k.bounded,
                "broke_at_offered_rps": k.broke.offered_rps if k.broke else None,
                "statement": k.statement,
            },
            "usl": self.fit.to_json(),
            "steps": [
                s.to_json() | {"slo": c.to_json()}
                for s, c in zip(self.steps, k.checks, strict=True)
            ],
            "statements": list(self.statements),
        }


def summarise_pass(
    name: str,
    capacity: dict[str, Any],
    steps: Sequence[StepFigures],
    slo: Sequence[th.Threshold],
    statements: Sequence[str] = (),
) -> PassResult:
    # Only steps that ran to completion carry a throughput the USL can use.
    points = [
        (s.concurrency, s.throughput_rps)
        for s in steps
        if s.status == "complete" and s.concurrency and s.throughput_rps
    ]
    return PassResult(
        name=name,
        capacity=capacity,
        steps=tuple(steps),
        knee=find_knee(steps, slo),
        fit=fit_usl(points),
        statements=tuple(statements),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TuneResult:
    target: str
    slo: tuple[str, ...]
    before: PassResult
    recommendation: Recommendation | None = None
    after: PassResult | None = None
    statements: tuple[str, ...] = ()
    measurements: dict[str, Any] = field(default_factory=dict)  # service time, CPU share, memory

    @property
    def target_rps(self) -> float | None:
        return self.recommendation.target_rps if self.recommendation else None

    @property
    def proof_step(self) -> StepFigures | None:
        if self.after is None or self.target_rps is None:
            return None
        return self.after.step_at(self.target_rps)

    @property
    def proof_holds(self) -> bool | None:
        """Whether the recommended setting held the SLO at the target (None = not proven)."""
        step = self.proof_step
        if step is None or self.after is None:
            return None
        i = self.after.steps.index(step)
        return self.after.knee.checks[i].holds

    def gate_figures(self) -> dict[str, Any]:
        b, a, proof = self.before, self.after, self.proof_step
        return {
            "knee_rps": b.knee.rps,
            "knee_p99_ms": b.knee.step.p99_ms if b.knee.step else None,
            "after_knee_rps": a.knee.rps if a else None,
            "after_target_p99_ms": proof.p99_ms if proof else None,
            "after_target_5xx_rate": proof.rate_5xx if proof else None,
            "usl_sigma": b.fit.sigma,
            "usl_kappa": b.fit.kappa,
            "usl_r2": b.fit.r2,
            "usl_peak_concurrency": b.fit.peak_concurrency,
            "recommended_capacity_rps": (
                self.recommendation.capacity_rps if self.recommendation else None
            ),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "version": TUNE_JSON_VERSION,
            "target": self.target,
            "slo": list(self.slo),
            "figures": self.gate_figures(),
            "measurements": self.measurements,
            "before": self.before.to_json(),
            "recommendation": self.recommendation.to_json() if self.recommendation else None,
            "after": self.after.to_json() if self.after else None,
            "proof": {
                "target_rps": self.target_rps,
                "holds": self.proof_holds,
            },
            "statements": list(self.statements),
        }
