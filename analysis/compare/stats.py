"""The statistics of `albprobe compare`, as pure numpy functions (no I/O, no run directories).

Rows within one run are not independent: one slow second slows every request in it. So every test
here works on *blocks* (time windows): the bootstrap resamples whole windows, the rank test
compares per-window medians, the proportion test takes its variance from the per-window counts.
Passing one block per row gives the naive row-based versions (the false-alarm benchmark compares
the two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_sided_p(z: float) -> float:
    return min(1.0, 2.0 * normal_sf(abs(z)))


@dataclass(frozen=True)
class QuantileShift:
    """new/base ratio of one latency quantile, its block-bootstrap CIs and two-sided p-value."""

    q: float
    base: float
    new: float
    ratio: float
    ratio_ci: tuple[float, float]
    base_ci: tuple[float, float]
    new_ci: tuple[float, float]
    p: float


def _weighted_quantiles(
    sorted_x: np.ndarray, weights: np.ndarray, qs: Sequence[float]
) -> np.ndarray:
    """Quantiles of ``sorted_x`` where row i counts ``weights[..., i]`` times (one row of
    ``weights`` per bootstrap replicate): the lower empirical quantile of the resample."""
    cum = np.cumsum(weights, axis=-1)
    total = cum[..., -1:]
    out = np.empty((weights.shape[0], len(qs)))
    for j, q in enumerate(qs):
        # first row whose cumulative weight reaches q * total
        target = np.maximum(q * total, 1e-9)
        idx = (cum < target).sum(axis=-1)
        out[:, j] = sorted_x[np.minimum(idx, len(sorted_x) - 1)]
    return out


def block_bootstrap_quantiles(
    x: np.ndarray,
    blocks: np.ndarray,
    qs: Sequence[float],
    *,
    reps: int,
    rng: np.random.Generator,
    batch: int = 64,
) -> np.ndarray:
    """``reps`` x len(qs) bootstrap replicates of the quantiles: each replicate draws as many
    blocks as there are, with replacement, and takes the quantiles of their rows (a block drawn
    k times counts its rows k times)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    _, bidx = np.unique(blocks[order], return_inverse=True)
    nb = int(bidx.max()) + 1 if len(bidx) else 0
    out = np.empty((reps, len(qs)))
    for start in range(0, reps, batch):
        k = min(batch, reps - start)
        mult = rng.multinomial(nb, np.full(nb, 1.0 / nb), size=k).astype(np.float64)
        out[start : start + k] = _weighted_quantiles(xs, mult[:, bidx], qs)
    return out


def quantile_shifts(
    base: np.ndarray,
    base_blocks: np.ndarray,
    new: np.ndarray,
    new_blocks: np.ndarray,
    qs: Sequence[float],
    *,
    reps: int = 400,
    seed: int = 0,
    level: float = 0.95,
) -> list[QuantileShift]:
    """Point quantiles of each run and the new/base ratio with percentile CIs from a block
    bootstrap of each run; the p-value comes from the bootstrap standard error of the log ratio
    (a normal approximation, so it is not limited to 1/reps)."""
    rng = np.random.default_rng(seed)
    bq = np.quantile(base, qs)
    nq = np.quantile(new, qs)
    bb = block_bootstrap_quantiles(base, base_blocks, qs, reps=reps, rng=rng)
    nb = block_bootstrap_quantiles(new, new_blocks, qs, reps=reps, rng=rng)
    floor = 1e-6
    log_r = np.log(np.maximum(nb, floor)) - np.log(np.maximum(bb, floor))
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    out = []
    for j, q in enumerate(qs):
        ratio = float(max(nq[j], floor) / max(bq[j], floor))
        se = float(np.std(log_r[:, j], ddof=1)) if reps > 1 else 0.0
        lr = math.log(ratio)
        p = two_sided_p(lr / se) if se > 0 else (1.0 if lr == 0 else 0.0)
        out.append(
            QuantileShift(
                q=q,
                base=float(bq[j]),
                new=float(nq[j]),
                ratio=ratio,
                ratio_ci=_ci(np.exp(log_r[:, j]), lo, hi),
                base_ci=_ci(bb[:, j], lo, hi),
                new_ci=_ci(nb[:, j], lo, hi),
                p=p,
            )
        )
    return out


def _ci(x: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    a, b = np.quantile(x, [lo, hi])
    return float(a), float(b)


@dataclass(frozen=True)
class RankTest:
    """Mann-Whitney U of new vs base; ``prob_greater`` = P(new > base) + P(tie)/2."""

    u: float
    n_base: int
    n_new: int
    prob_greater: float
    p: float


def mann_whitney(base: np.ndarray, new: np.ndarray) -> RankTest:
    """Two-sided Mann-Whitney U test, normal approximation with tie and continuity
    corrections (the samples here are per-window medians, a few dozen or more)."""
    n1, n2 = len(base), len(new)
    if n1 == 0 or n2 == 0:
        return RankTest(0.0, n1, n2, 0.5, 1.0)
    allx = np.concatenate([base, new])
    order = np.argsort(allx, kind="mergesort")
    ranks = np.empty(len(allx))
    sx = allx[order]
    # average ranks over ties
    _, first, counts = np.unique(sx, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u_new = float(ranks[n1:].sum() - n2 * (n2 + 1) / 2.0)
    mu = n1 * n2 / 2.0
    n = n1 + n2
    tie = float((counts**3 - counts).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return RankTest(u_new, n1, n2, 0.5, 1.0)
    z = (abs(u_new - mu) - 0.5) / math.sqrt(var)
    return RankTest(u_new, n1, n2, u_new / (n1 * n2), two_sided_p(max(z, 0.0)))


@dataclass(frozen=True)
class ProportionTest:
    base_rate: float
    new_rate: float
    delta: float
    ci: tuple[float, float]
    p: float


def _cluster_var(events: np.ndarray, totals: np.ndarray) -> float:
    """Variance of sum(events)/sum(totals) over blocks (the ratio estimator's cluster-robust
    variance): large when failures come in bursts, binomial-like when they are spread out."""
    m = len(totals)
    n = float(totals.sum())
    if m < 2 or n <= 0:
        return 0.0
    p = float(events.sum()) / n
    resid = events - p * totals
    return m / (m - 1) * float((resid**2).sum()) / n**2


def two_proportions(
    base_events: np.ndarray,
    base_totals: np.ndarray,
    new_events: np.ndarray,
    new_totals: np.ndarray,
    *,
    level: float = 0.95,
) -> ProportionTest:
    """Two-proportion z-test on per-block counts. The variance is the larger of the pooled
    binomial one (the classic test) and the per-block (cluster) one, so bursts of failures in a
    few seconds do not pass for a rate change."""
    n1, n2 = float(base_totals.sum()), float(new_totals.sum())
    if n1 <= 0 or n2 <= 0:
        return ProportionTest(0.0, 0.0, 0.0, (0.0, 0.0), 1.0)
    e1, e2 = float(base_events.sum()), float(new_events.sum())
    p1, p2 = e1 / n1, e2 / n2
    pooled = (e1 + e2) / (n1 + n2)
    v_pooled = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    v_cluster = _cluster_var(base_events, base_totals) + _cluster_var(new_events, new_totals)
    var = max(v_pooled, v_cluster)
    delta = p2 - p1
    if var <= 0:
        # No failure in either run (or nothing but failures): the plain interval has no width,
        # as if both rates were known exactly. Agresti-Caffo's (one event and one non-event
        # added to each run) is what ~900 clean requests per run can still hide, e.g. 0 vs 0
        # of 900 is about +-0.3 points.
        a1, a2 = (e1 + 1) / (n1 + 2), (e2 + 1) / (n2 + 2)
        half = _z(level) * math.sqrt(a1 * (1 - a1) / (n1 + 2) + a2 * (1 - a2) / (n2 + 2))
        return ProportionTest(
            p1, p2, delta, (a2 - a1 - half, a2 - a1 + half), 1.0 if delta == 0 else 0.0
        )
    se = math.sqrt(var)
    zc = _z(level)
    return ProportionTest(
        p1, p2, delta, (delta - zc * se, delta + zc * se), two_sided_p(delta / se)
    )


def _z(level: float) -> float:
    """The two-sided normal critical value (bisection on erfc; no scipy needed)."""
    target = (1 - level) / 2
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if normal_sf(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def holm(p: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (controls the chance of any false alarm)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adj = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (controls the share of false alarms)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i], reverse=True)
    adj = [1.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, p[i] * m / rank)
        adj[i] = min(1.0, running)
    return adj


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}
