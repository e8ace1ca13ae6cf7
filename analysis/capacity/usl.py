"""The Universal Scalability Law fit: X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)).

Least squares in two passes, numpy only: the linear form N/X = a + b (N-1) + c N (N-1)
(a = 1/lambda, b = sigma/lambda, c = kappa/lambda) gives a start, then a damped Gauss-Newton
refines the fit on X itself, with sigma and kappa kept >= 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_POINTS = 4
MIN_SPREAD = 2.0  # the concurrencies must span at least a factor of 2
# A worker pool saturates abruptly, which the USL's smooth curve approximates with R² of about
# 0.75-0.99; below 0.7 the curve explains too little to report.
MIN_R2 = 0.7
RETROGRADE_DROP = 0.05  # a measured point beyond N* at least this far below the peak
# Per-unit throughput at the highest concurrency still >= this share of the lowest's: the target
# never saturated, and sigma and kappa are not constrained by the data.
LINEAR_EFFICIENCY = 0.85


@dataclass(frozen=True, slots=True, kw_only=True)
class UslFit:
    """A fit, or why the data does not support one (then the parameters are None)."""

    supported: bool
    reason: str
    points: int
    lam: float | None = None  # throughput of one unit of concurrency, req/s
    sigma: float | None = None  # contention
    kappa: float | None = None  # coherency (crosstalk)
    r2: float | None = None
    rmse: float | None = None  # req/s
    peak_concurrency: float | None = None  # N* = sqrt((1 - sigma) / kappa)
    peak_rps: float | None = None
    # Whether a measured step beyond N* really lost throughput; None = no step beyond N*. Without
    # it, kappa only shapes the curve and N* is an extrapolation, not a finding.
    retrograde_measured: bool | None = None

    def predict(self, n: float) -> float | None:
        if self.lam is None or self.sigma is None or self.kappa is None:
            return None
        return usl(n, self.lam, self.sigma, self.kappa)

    def to_json(self) -> dict[str, Any]:
        return {
            "supported": self.supported,
            "reason": self.reason,
            "points": self.points,
            "lambda": self.lam,
            "sigma": self.sigma,
            "kappa": self.kappa,
            "r2": self.r2,
            "rmse_rps": self.rmse,
            "peak_concurrency": self.peak_concurrency,
            "peak_rps": self.peak_rps,
            "retrograde_measured": self.retrograde_measured,
        }


def usl(n: float | np.ndarray, lam: float, sigma: float, kappa: float) -> Any:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def _linear_start(n: np.ndarray, x: np.ndarray) -> tuple[float, float, float] | None:
    a = np.column_stack([np.ones_like(n), n - 1, n * (n - 1)])
    coef, *_ = np.linalg.lstsq(a, n / x, rcond=None)
    inv_lam, b, c = (float(v) for v in coef)
    if not inv_lam > 0:
        return None
    return 1 / inv_lam, max(b / inv_lam, 0.0), max(c / inv_lam, 0.0)


def _refine(
    n: np.ndarray, x: np.ndarray, p: tuple[float, float, float], iterations: int = 100
) -> tuple[float, float, float]:
    lam, sigma, kappa = p
    mu = 1e-3

    def sse(q: tuple[float, float, float]) -> float:
        return float(np.sum((x - usl(n, *q)) ** 2))

    cur = sse((lam, sigma, kappa))
    for _ in range(iterations):
        d = 1 + sigma * (n - 1) + kappa * n * (n - 1)
        f = lam * n / d
        jac = np.column_stack([n / d, -f * (n - 1) / d, -f * n * (n - 1) / d])
        r = x - f
        jtj = jac.T @ jac
        step = np.linalg.solve(jtj + mu * np.diag(np.diag(jtj) + 1e-12), jac.T @ r)
        cand = (lam + step[0], max(sigma + step[1], 0.0), max(kappa + step[2], 0.0))
        new = sse(cand) if cand[0] > 0 else math.inf
        if new < cur:
            lam, sigma, kappa = cand
            mu = max(mu / 3, 1e-9)
            if cur - new < 1e-12 * max(cur, 1e-12):
                cur = new
                break
            cur = new
        else:
            mu *= 4
            if mu > 1e8:
                break
    return lam, sigma, kappa


def fit_usl(points: Sequence[tuple[float, float]]) -> UslFit:
    """Fit (concurrency N, throughput X) pairs. Says why when the data cannot carry a fit."""
    pts = [
        (float(n), float(x))
        for n, x in points
        if n is not None and x is not None and math.isfinite(n) and math.isfinite(x)
        if n > 0 and x > 0
    ]
    k = len(pts)
    if k < MIN_POINTS:
        return UslFit(
            supported=False,
            reason=f"{k} usable step(s); a fit needs at least {MIN_POINTS}",
            points=k,
        )
    n = np.array([p[0] for p in pts])
    x = np.array([p[1] for p in pts])
    if n.max() / n.min() < MIN_SPREAD:
        return UslFit(
            supported=False,
            reason=f"concurrency only spans {n.min():.2f}-{n.max():.2f}; a fit needs a "
            f"factor of {MIN_SPREAD:g} (start the steps lower)",
            points=k,
        )
    per_unit = x / n
    lowest = int(np.argmin(n))
    if float(np.min(per_unit / per_unit[lowest])) >= LINEAR_EFFICIENCY:
        return UslFit(
            supported=False,
            reason="throughput rose in proportion to concurrency at every step: the target never "
            "saturated, so contention and coherency cannot be estimated (go to higher rates)",
            points=k,
        )
    start = _linear_start(n, x)
    if start is None:
        return UslFit(
            supported=False,
            reason="throughput does not rise with concurrency at the low end (no linear region)",
            points=k,
        )
    lam, sigma, kappa = (float(v) for v in _refine(n, x, start))
    pred = usl(n, lam, sigma, kappa)
    ss_res = float(np.sum((x - pred) ** 2))
    ss_tot = float(np.sum((x - x.mean()) ** 2))
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 0.0
    rmse = math.sqrt(ss_res / k)
    peak_n = math.sqrt((1 - sigma) / kappa) if kappa > 0 and sigma < 1 else None
    peak_x = float(usl(peak_n, lam, sigma, kappa)) if peak_n is not None else None
    if r2 < MIN_R2:
        # No numbers: a curve that explains little of the data would only mislead.
        return UslFit(
            supported=False,
            reason=f"the curve explains too little of the data (R² {r2:.2f} < {MIN_R2:g})",
            points=k,
        )
    retro = None
    if peak_n is not None and bool(np.any(n > peak_n)):
        retro = bool(np.any(x[n > peak_n] < (1 - RETROGRADE_DROP) * x.max()))
    return UslFit(
        supported=True,
        reason=f"R² {r2:.3f} over {k} steps",
        retrograde_measured=retro,
        points=k,
        lam=lam,
        sigma=sigma,
        kappa=kappa,
        r2=r2,
        rmse=rmse,
        peak_concurrency=peak_n,
        peak_rps=peak_x,
    )
