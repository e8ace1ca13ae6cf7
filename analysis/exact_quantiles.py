"""Exact quantiles (DuckDB's ``quantile_cont``, to the bit) with bounded memory.

``quantile_cont`` keeps every value of its group until the end: 8 bytes a row, so the run-wide
quantiles of 100 M requests need 800 MB (grown by doubling to 1 GiB) in one aggregate state.
Here the same figures come from:

1. a histogram pass: rows per bucket of a monotone key of the value (``key_sql``: buckets are
   intervals of values, about 0.05 % wide at 20 ms; a few thousand buckets);
2. the ranks ``quantile_cont`` interpolates between (floor and ceil of q * (n - 1)) and the
   bucket that holds each, from the cumulative counts;
3. one more pass that collects only the values of those few buckets (``Need.predicate``), so the
   wanted order statistics are picked out of a few thousand values instead of sorting them all;
4. DuckDB's own interpolation between the two (``interpolate_sql``: the same function on the two
   values, so the result is the same double ``quantile_cont`` gives, whatever DuckDB's build does
   with its floating-point contraction).

A bucket holding more than ``CANDIDATES_MAX`` rows (many equal or nearly equal values) is split
again by a linear key within its range (``refine``: one more pass per level) until the wanted
ranks sit in buckets that fit or hold one value.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import duckdb
import numpy as np

KEY_SCALE = 4096.0  # buckets: floor(x ** (1/4) * 4096); relative width 4 / (4096 * x ** (1/4))
CANDIDATES_MAX = 4_000_000  # values of one bucket collected at most (32 MB); beyond: refine
REFINE_BUCKETS = 65536.0
_MARGIN = 1e-9  # a bucket's value range is widened by this much (the key decides, not the range)


def key_sql(col: str) -> str:
    """The bucket of ``col`` (a DOUBLE): non-decreasing in the value (sqrt is correctly rounded,
    x 4096 exact, floor monotone), so each bucket is an interval of values. NULL stays NULL;
    NaN, +inf and -inf get buckets of their own."""
    return f"(sign({col}) * floor(sqrt(sqrt(abs({col}))) * {KEY_SCALE!r}))"


def key_np(v: np.ndarray) -> np.ndarray:
    """key_sql in numpy: the same double for every value (IEEE sqrt both sides)."""
    with np.errstate(invalid="ignore"):
        k = np.sign(v) * np.floor(np.sqrt(np.sqrt(np.abs(v))) * KEY_SCALE)
    return np.where(np.isnan(v), np.nan, k + 0.0)  # -0.0 -> 0.0 as DuckDB's sign() gives


def _bucket_range(b: float) -> tuple[float, float]:
    """Closed value range holding bucket ``b`` (widened: the key picks the bucket's values)."""
    a = abs(b)
    lo, hi = (a / KEY_SCALE) ** 4 * (1 - _MARGIN), ((a + 1) / KEY_SCALE) ** 4 * (1 + _MARGIN)
    if b > 0:
        return lo, hi
    if b < 0:
        return -hi, -lo
    return -hi, hi


def _lit(x: float) -> str:
    return f"CAST('{x!r}' AS DOUBLE)"


def _sort_key(k: float) -> tuple[int, float]:
    return (1, 0.0) if math.isnan(k) else (0, k)  # DuckDB orders NaN after +inf


@dataclass
class Need:
    """Values of one group (``group_sql`` on the rows, ``col`` the value) in one bucket, and the
    offsets (0-based, within the bucket, in value order) of the ranks wanted from it."""

    col: str
    group_sql: str
    count: int
    lo: float
    hi: float
    key: float | None  # main-histogram bucket: the values whose key_np is this; None: [lo, hi]
    offsets: dict[int, float | None] = field(default_factory=dict)  # offset -> value once known

    def predicate(self) -> str:
        cond = f"{self.col} BETWEEN {_lit(self.lo)} AND {_lit(self.hi)}"
        return cond if self.group_sql == "true" else f"({self.group_sql}) AND {cond}"

    def take(self, values: np.ndarray) -> None:
        """Pick the wanted offsets out of the collected values (a superset: filtered here)."""
        v = values[(values >= self.lo) & (values <= self.hi)]
        if self.key is not None:
            v = v[key_np(v) == self.key]
        if v.size != self.count:
            raise RuntimeError(
                f"exact quantile: {v.size} values collected for {self.col} in [{self.lo!r}, "
                f"{self.hi!r}], the histogram counted {self.count}"
            )
        v = np.sort(v)
        for o in self.offsets:
            self.offsets[o] = float(v[o])


@dataclass
class Series:
    """One quantile_cont(col, qs) over the rows where ``group_sql``: its histogram (bucket key ->
    rows with a value) and, once resolved, its figures."""

    col: str
    group_sql: str
    qs: list[float]
    hist: dict[float, int] = field(default_factory=dict)
    result: list[float] | None = None
    _ranks: list[tuple[int, int, float]] = field(default_factory=list)  # (floor, ceil, d) per q
    _at: dict[int, tuple[Need | None, int, float | None]] = field(default_factory=dict)

    def add(self, key: float | None, n: int) -> None:
        if key is None or not n:
            return
        key = float(key) + 0.0
        self.hist[key] = self.hist.get(key, 0) + int(n)

    def needs(self) -> list[Need]:
        """Locate every wanted rank; the buckets whose values must be collected."""
        keys = sorted(self.hist, key=_sort_key)
        counts = np.array([self.hist[k] for k in keys], dtype=np.int64)
        n = int(counts.sum())
        if not n:
            return []
        cum = np.cumsum(counts)
        out: dict[float, Need] = {}
        for q in self.qs:
            rn = float(n - 1) * q  # as DuckDB's Interpolator: RN = (n - 1) * q
            f, c = math.floor(rn), math.ceil(rn)
            self._ranks.append((f, c, rn - f))
            for r in (f, c):
                i = int(np.searchsorted(cum, r, side="right"))
                b, off = keys[i], r - (int(cum[i - 1]) if i else 0)
                if not math.isfinite(b):  # +inf, -inf and NaN buckets hold one value each
                    self._at[r] = (None, 0, b)
                    continue
                if b not in out:
                    lo, hi = _bucket_range(b)
                    out[b] = Need(self.col, self.group_sql, int(counts[i]), lo, hi, b)
                out[b].offsets[off] = None
                self._at[r] = (out[b], off, None)
        return list(out.values())

    def rank_value(self, r: int) -> float:
        need, off, v = self._at[r]
        return need.offsets[off] if need is not None else v  # type: ignore[return-value]

    def relocate(self, old: Need, new: list[tuple[Need | None, int, int, float | None]]) -> None:
        """``old``'s offsets now live in refined needs: (need, old offset, new offset, value)."""
        for r, (need, off, _v) in list(self._at.items()):
            if need is old:
                for n2, o_old, o_new, val in new:
                    if o_old == off:
                        self._at[r] = (n2, o_new, val)


def refine(con: duckdb.DuckDBPyConnection, table: str, needs: list[Need]) -> list[Any]:
    """Split each need's bucket by a linear key within its range (one pass for all of them):
    [(old need, [(new need or None, old offset, new offset, value if known)])]."""
    out = []
    sels = []
    for i, nd in enumerate(needs):
        keycond = f" AND {key_sql(nd.col)} = {_lit(nd.key)}" if nd.key is not None else ""
        scale = REFINE_BUCKETS / (nd.hi - nd.lo) if nd.hi > nd.lo else 1.0
        sels.append(
            f"SELECT {i} AS i, floor(({nd.col} - {_lit(nd.lo)}) * {_lit(scale)}) AS k, "
            f"count(*) AS n, min({nd.col}) AS mn, max({nd.col}) AS mx FROM {table} "
            f"WHERE {nd.predicate()}{keycond} GROUP BY ALL"
        )
    rows = con.execute(" UNION ALL ".join(sels) + " ORDER BY i, k").fetchall()
    for i, nd in enumerate(needs):
        sub = [r for r in rows if r[0] == i]
        cum = np.cumsum([r[2] for r in sub])
        if not len(sub) or int(cum[-1]) != nd.count:
            raise RuntimeError(
                f"exact quantile: refining {nd.col} found {cum} rows, not {nd.count}"
            )
        moved: list[tuple[Need | None, int, int, float | None]] = []
        made: dict[int, Need] = {}
        for off in nd.offsets:
            j = int(np.searchsorted(cum, off, side="right"))
            _, _, cnt, mn, mx = sub[j]
            o2 = off - (int(cum[j - 1]) if j else 0)
            if mn == mx:
                moved.append((None, off, o2, float(mn)))
                continue
            # values in [mn, mx] of this group are exactly this sub-bucket's (monotone keys)
            n2 = made.setdefault(
                j, Need(nd.col, nd.group_sql, int(cnt), float(mn), float(mx), None)
            )
            n2.offsets[o2] = None
            moved.append((n2, off, o2, None))
        out.append((nd, moved))
    return out


def interpolate(con: duckdb.DuckDBPyConnection, series: list[Series]) -> None:
    """Each series' figures from its rank values, interpolated by DuckDB itself: quantile_cont of
    the two values at d = RN - floor(RN) is lo + (hi - lo) * d as DuckDB computes it."""
    exprs: list[str] = []
    slots: list[tuple[Series, int]] = []
    for s in series:
        if not s._ranks:
            s.result = None
            continue
        s.result = [math.nan] * len(s.qs)
        for j, (f, c, d) in enumerate(s._ranks):
            lo, hi = s.rank_value(f), s.rank_value(c)
            if f == c:
                s.result[j] = lo
                continue
            exprs.append(f"list_aggregate([{_lit(lo)}, {_lit(hi)}], 'quantile_cont', {_lit(d)})")
            slots.append((s, j))
    if exprs:
        row = con.execute("SELECT " + ", ".join(exprs)).fetchall()[0]
        for (s, j), v in zip(slots, row, strict=True):
            assert s.result is not None
            s.result[j] = v


# DuckDB's quantile_cont interpolates between the two order statistics with one of these
# formulas, depending on how its build contracts floating point (DuckDB 2.0 on x86-64:
# lo * (1 - d) + hi * d with the first product fused). Which one is found once, by asking DuckDB.
def _fma(a: float, b: float, c: float) -> float:
    """a * b + c rounded once (exact rational arithmetic; int / int division rounds correctly)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


_LERPS: dict[str, Any] = {
    "fma(lo, 1 - d, hi * d)": lambda lo, hi, d: _fma(lo, 1.0 - d, hi * d),
    "lo * (1 - d) + hi * d": lambda lo, hi, d: lo * (1.0 - d) + hi * d,
    "fma(hi * d, 1, lo * (1 - d))": lambda lo, hi, d: _fma(hi, d, lo * (1.0 - d)),
    "lo + (hi - lo) * d": lambda lo, hi, d: lo + (hi - lo) * d,
    "fma(hi - lo, d, lo)": lambda lo, hi, d: _fma(hi - lo, d, lo),
}


@functools.cache
def _duckdb_lerp() -> Any:
    """The formula DuckDB's quantile_cont uses here, or None when none of _LERPS matches it."""
    rng = np.random.default_rng(7)
    lo = rng.uniform(-1e3, 1e4, 96).tolist()
    hi = [a + b for a, b in zip(lo, rng.exponential(300.0, 96).tolist(), strict=True)]
    d = rng.uniform(0.0, 1.0, 96).tolist()
    exprs = [
        f"list_aggregate([{_lit(a)}, {_lit(b)}], 'quantile_cont', {_lit(x)})"
        for a, b, x in zip(lo, hi, d, strict=True)
    ]
    con = duckdb.connect()
    try:
        got = con.execute("SELECT " + ", ".join(exprs)).fetchall()[0]
    finally:
        con.close()
    for f in _LERPS.values():
        if all(f(a, b, x) == g for a, b, x, g in zip(lo, hi, d, got, strict=True)):
            return f
    return None


def interpolate_values(lo: float, hi: float, d: float) -> float:
    """quantile_cont's value at fraction ``d`` between order statistics ``lo`` <= ``hi``, to the
    bit, without a query (the formula found by _duckdb_lerp; DuckDB itself if none matched)."""
    if d == 0.0 or lo == hi:
        return lo
    f = _duckdb_lerp()
    if f is not None and math.isfinite(lo) and math.isfinite(hi):
        return float(f(lo, hi, d))
    con = duckdb.connect()
    try:
        row = con.execute(
            f"SELECT list_aggregate([{_lit(lo)}, {_lit(hi)}], 'quantile_cont', {_lit(d)})"
        ).fetchone()
    finally:
        con.close()
    return float(row[0])  # type: ignore[index]


def quantiles_of(x: np.ndarray, qs: tuple[float, ...] | list[float]) -> list[float]:
    """quantile_cont(x, qs) of an in-memory array, to the bit, in linear time: the order
    statistics at floor and ceil of (n - 1) * q picked by np.partition (no sort), then
    interpolated as DuckDB does."""
    n = len(x)
    rns = [(n - 1) * q for q in qs]
    ks = sorted({k for rn in rns for k in (math.floor(rn), math.ceil(rn))})
    p = np.partition(x, ks)
    return [
        interpolate_values(float(p[math.floor(rn)]), float(p[math.ceil(rn)]), rn - math.floor(rn))
        for rn in rns
    ]
