"""Figures of a comparison and their judgement: regressed / improved / unchanged / inconclusive,
and the overall pass / marginal / fail (docs/compare.md).

A figure is *regressed* only when its change is statistically significant after correcting for the
number of figures tested (Holm by default) *and* larger than a minimum effect; with too few samples
it is *inconclusive*, never regressed. A CORS failure on an endpoint whose baseline had none is a
regression on its own: the browser's CORS verdict is deterministic, not noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from analysis.compare import data, stats
from analysis.compare.data import ALL, PRODUCERS, Counts, Latency, RunData

Judgement = Literal["regressed", "improved", "unchanged", "inconclusive"]
QUANTILES = dict(zip(("p50", "p95", "p99"), data.QUANTILES, strict=True))


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05
    min_latency_effect: float = 0.10  # +10 %: relative change of a latency figure
    min_rate_effect: float = 0.005  # +0.5 points: absolute change of a failure rate
    # and at least this many ms: +40 % of a 3 ms endpoint is 1.2 ms, which a shared machine's
    # load between two runs moves (measured: bench/README.md, compare); 0 = no floor
    min_latency_ms: float = 2.0
    min_requests: int = 100  # per run, for a rate or the median
    min_windows: int = 5  # time blocks per run
    tail_samples: int = 5  # rows beyond a quantile per run (p99 needs 500 rows)
    correction: str = "holm"  # or "bh" (Benjamini-Hochberg)
    blocks: bool = True  # False: the naive row-based tests (the false-alarm benchmark)
    bootstrap_reps: int = 400
    max_bootstrap_rows: int = 20_000  # per endpoint and run; point figures use every row
    seed: int = 0

    def __post_init__(self) -> None:
        if self.correction not in stats.CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(stats.CORRECTIONS)}")


@dataclass
class Figure:
    scope: str  # an endpoint, or "(all)"
    name: str  # p50, p95, p99, latency_shift, <producer>_rate, new_cors_failures, dropped_rate
    unit: str  # "ms", "rate", "count", "ratio"
    base: float | None
    new: float | None
    effect: float | None  # relative for latency (+0.12 = 12 % slower), absolute for rates
    effect_ci: tuple[float, float] | None = None
    base_ci: tuple[float, float] | None = None
    new_ci: tuple[float, float] | None = None
    p: float | None = None
    p_adj: float | None = None
    n_base: int = 0
    n_new: int = 0
    judgement: Judgement = "inconclusive"
    why: str = ""
    tested: bool = False  # has a p-value that enters the multiple-testing correction

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cap(lat: Latency, cap: int, rng: np.random.Generator) -> Latency:
    if len(lat.ms) <= cap:
        return lat
    pick = rng.choice(len(lat.ms), cap, replace=False)
    return Latency(lat.ms[pick], lat.window[pick])


def latency_figures(scope: str, b: Latency, n: Latency, s: Settings) -> list[Figure]:
    """p50/p95/p99 with block-bootstrap CIs, and the rank test on per-window medians."""
    rng = np.random.default_rng(s.seed)
    out: list[Figure] = []
    fewest = min(b.n, n.n)
    ok = {
        name: fewest * (1 - q) >= s.tail_samples and fewest >= s.min_requests
        for name, q in QUANTILES.items()
    }
    nwb, nwn = len(b.window_medians()), len(n.window_medians())
    blocks_ok = not s.blocks or min(nwb, nwn) >= s.min_windows
    test_q = [name for name in QUANTILES if ok[name] and blocks_ok]
    shifts: dict[str, stats.QuantileShift] = {}
    if test_q:
        bc, nc = _cap(b, s.max_bootstrap_rows, rng), _cap(n, s.max_bootstrap_rows, rng)
        bblk = bc.window if s.blocks else np.arange(len(bc.ms))
        nblk = nc.window if s.blocks else np.arange(len(nc.ms))
        res = stats.quantile_shifts(
            bc.ms,
            bblk,
            nc.ms,
            nblk,
            [QUANTILES[k] for k in test_q],
            reps=s.bootstrap_reps,
            seed=s.seed,
        )
        shifts = dict(zip(test_q, res, strict=True))
    for name, q in QUANTILES.items():
        bq, nq = b.quantile(q), n.quantile(q)
        f = Figure(scope, name, "ms", bq, nq, None, n_base=b.n, n_new=n.n)
        if bq and nq is not None:
            f.effect = nq / bq - 1
        sh = shifts.get(name)
        if sh is None:
            f.why = (
                f"too few requests for {name} (need {max(s.min_requests, int(np.ceil(s.tail_samples / (1 - q))))} per run)"
                if not ok[name]
                else f"too few time windows ({min(nwb, nwn)} < {s.min_windows})"
            )
        else:
            f.effect_ci = (sh.ratio_ci[0] - 1, sh.ratio_ci[1] - 1)
            f.base_ci, f.new_ci, f.p, f.tested = sh.base_ci, sh.new_ci, sh.p, True
        out.append(f)
    # the rank test: per-window medians (blocks), or every row (naive)
    if s.blocks:
        bx, nx = b.window_medians(), n.window_medians()
        enough = min(len(bx), len(nx)) >= s.min_windows
    else:
        bx, nx = _cap(b, s.max_bootstrap_rows, rng).ms, _cap(n, s.max_bootstrap_rows, rng).ms
        enough = min(len(bx), len(nx)) >= s.min_requests
    f = Figure(scope, "latency_shift", "ms", None, None, None, n_base=len(bx), n_new=len(nx))
    if len(bx) and len(nx):
        f.base, f.new = float(np.median(bx)), float(np.median(nx))
        f.effect = f.new / f.base - 1 if f.base else None
    if enough:
        rt = stats.mann_whitney(bx, nx)
        f.p, f.tested = rt.p, True
        f.why = f"P(new window slower) = {rt.prob_greater:.2f}"
    else:
        f.why = f"too few {'time windows' if s.blocks else 'requests'} for the rank test"
    out.append(f)
    return out


def rate_figures(scope: str, b: Counts, n: Counts, s: Settings) -> list[Figure]:
    out = []
    for p in PRODUCERS:
        be, ne = b.events[p], n.events[p]
        bt, nt = b.n, n.n
        if not s.blocks:  # every request its own block: the classic binomial test
            be, ne, bt, nt = (
                be.sum(keepdims=True),
                ne.sum(keepdims=True),
                bt.sum(keepdims=True),
                nt.sum(keepdims=True),
            )
        f = Figure(scope, f"{p}_rate", "rate", None, None, None, n_base=b.total, n_new=n.total)
        if b.total and n.total:
            t = stats.two_proportions(be, bt, ne, nt)
            f.base, f.new, f.effect, f.effect_ci = t.base_rate, t.new_rate, t.delta, t.ci
            enough = min(b.total, n.total) >= s.min_requests and (
                not s.blocks or min(len(b.n), len(n.n)) >= s.min_windows
            )
            if enough:
                f.p, f.tested = t.p, True
            else:
                f.why = (
                    f"too few requests (need {s.min_requests} in {s.min_windows}+ windows per run)"
                )
        out.append(f)
    return out


def dropped_figure(base: RunData, new: RunData, s: Settings) -> Figure | None:
    """Open model only: the share of scheduled iterations that could not start on time."""
    if base.scheduled is None or new.scheduled is None:
        return None
    f = Figure(
        ALL,
        "dropped_rate",
        "rate",
        None,
        None,
        None,
        n_base=int(base.scheduled.sum()),
        n_new=int(new.scheduled.sum()),
    )
    if f.n_base and f.n_new:
        t = stats.two_proportions(base.dropped, base.scheduled, new.dropped, new.scheduled)  # type: ignore[arg-type]
        f.base, f.new, f.effect, f.effect_ci = t.base_rate, t.new_rate, t.delta, t.ci
        if min(f.n_base, f.n_new) >= s.min_requests:
            f.p, f.tested = t.p, True
    return f


def cors_figures(base: RunData, new: RunData, scopes: list[str]) -> list[Figure]:
    """CORS failures of app responses on an endpoint (and step) whose baseline had none."""
    had = {(c["endpoint"], c["cors_step"]) for c in base.cors_failures}
    out = []
    for scope in scopes:
        mine = [c for c in new.cors_failures if scope == ALL or c["endpoint"] == scope]
        fresh = [c for c in mine if (c["endpoint"], c["cors_step"]) not in had]
        before = sum(
            c["count"] for c in base.cors_failures if scope == ALL or c["endpoint"] == scope
        )
        n = sum(c["count"] for c in fresh)
        f = Figure(
            scope,
            "new_cors_failures",
            "count",
            float(before),
            float(sum(c["count"] for c in mine)),
            float(n),
        )
        if n:
            f.judgement = "regressed"
            steps = ", ".join(
                sorted({f"{c['endpoint']} {c['kind']} {c['cors_step']}" for c in fresh})
            )
            f.why = f"{n} app responses now fail the browser's CORS check where none did ({steps})"
        else:
            f.judgement = "unchanged"
            f.why = "no CORS failure that the baseline did not have"
        out.append(f)
    return out


def judge(figures: list[Figure], s: Settings) -> None:
    """Adjust the p-values of the tested figures together, then judge each (in place)."""
    tested = [f for f in figures if f.tested and f.p is not None]
    adj = stats.CORRECTIONS[s.correction]([f.p for f in tested])  # type: ignore[misc]
    for f, pa in zip(tested, adj, strict=True):
        f.p_adj = pa
    for f in figures:
        if f.name == "new_cors_failures":
            continue  # judged on its own (deterministic)
        if not f.tested or f.p_adj is None or f.effect is None:
            f.judgement = "inconclusive"
            f.why = f.why or "not enough data in one of the runs"
            continue
        floor = s.min_latency_effect if f.unit == "ms" else s.min_rate_effect
        sig = f.p_adj < s.alpha
        big = abs(f.effect) > floor and _beyond_ms(f, s)
        if sig and big and f.effect > 0:
            f.judgement = "regressed"
        elif sig and big:
            f.judgement = "improved"
        else:
            f.judgement = "unchanged"
        size = f"{f.effect:+.1%}" if f.unit == "ms" else f"{f.effect * 100:+.2f} points"
        floor_s = f"{floor:.0%}" if f.unit == "ms" else f"{floor * 100:.2g} points"
        if f.unit == "ms" and s.min_latency_ms:
            floor_s += f" and {s.min_latency_ms:g} ms"
        sig_s = f"p={f.p_adj:.2g} after {s.correction}"
        if f.judgement in ("regressed", "improved"):
            f.why = f"{size}, significant ({sig_s}) and beyond the minimum effect {floor_s}"
        elif sig:
            f.why = f"{size}: significant ({sig_s}) but within the minimum effect {floor_s}"
        else:
            f.why = f"{size}: not significant ({sig_s})" + (f"; {f.why}" if f.why else "")


def _beyond_ms(f: Figure, s: Settings) -> bool:
    """The optional absolute floor of a latency change (always true for rates)."""
    if f.unit != "ms" or not s.min_latency_ms or f.base is None or f.new is None:
        return True
    return abs(f.new - f.base) > s.min_latency_ms


@dataclass
class Overall:
    result: Literal["pass", "marginal", "fail"]
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def overall(figures: list[Figure], s: Settings) -> Overall:
    """fail: a figure regressed. marginal: none regressed, but a figure is worse beyond the
    minimum effect and significant under the laxer Benjamini-Hochberg correction, though not
    under Holm (a lead worth a second run); or the whole run's latency could not be judged.
    pass: otherwise."""
    reg = [f for f in figures if f.judgement == "regressed"]
    if reg:
        return Overall("fail", [f"{f.key} regressed: {f.why}" for f in reg])
    reasons = []
    tested = [f for f in figures if f.tested and f.p is not None]
    lax = stats.benjamini_hochberg([f.p for f in tested])  # type: ignore[misc]
    for f, p_bh in zip(tested, lax, strict=True):
        if f.judgement != "unchanged" or f.effect is None or s.correction == "bh":
            continue
        floor = s.min_latency_effect if f.unit == "ms" else s.min_rate_effect
        if f.effect > floor and _beyond_ms(f, s) and p_bh < s.alpha:
            reasons.append(f"{f.key} looks worse (p={p_bh:.2g} after bh; {f.why})")
    lat_all = [f for f in figures if f.scope == ALL and f.unit == "ms"]
    if lat_all and all(f.judgement == "inconclusive" for f in lat_all):
        reasons.append("the overall latency could not be judged (too few requests or windows)")
    return Overall("marginal", reasons) if reasons else Overall("pass", [])
