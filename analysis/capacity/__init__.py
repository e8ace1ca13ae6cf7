"""Capacity tuning, the pure part: per-step figures, the SLO and the knee, the USL fit, and the
gunicorn recommendation (the method: docs/tuning.md). The step runs are the CLI's job."""

from analysis.capacity.knee import (
    SLO_METRICS,
    Knee,
    SloCheck,
    check_slo,
    find_knee,
    next_rate,
    parse_slo,
)
from analysis.capacity.recommend import Memory, Recommendation, recommend
from analysis.capacity.result import (
    GATE_METRICS,
    PassResult,
    TuneResult,
    parse_gates,
    summarise_pass,
)
from analysis.capacity.steps import StepFigures, StepWindow, window_figures
from analysis.capacity.usl import UslFit, fit_usl, usl

__all__ = [
    "GATE_METRICS",
    "PassResult",
    "TuneResult",
    "parse_gates",
    "summarise_pass",
    "SLO_METRICS",
    "Knee",
    "Memory",
    "Recommendation",
    "SloCheck",
    "StepFigures",
    "StepWindow",
    "UslFit",
    "check_slo",
    "find_knee",
    "fit_usl",
    "next_rate",
    "parse_slo",
    "recommend",
    "window_figures",
    "usl",
]
