"""The ``(all)`` scope at one endpoint mix, so that a change of mix alone is no regression.

Users pick endpoints at random, so two runs of one build send each endpoint a slightly different
share of the requests. When the endpoints differ in speed, the run-wide quantiles move with that
share alone: with a 300 ms and a 600 ms endpoint sent about half each, the run-wide median sits
where the two meet and jumps from one to the other when the share moves a few points (measured on
the testbed: 55 % of the fast endpoint in one run, 46 % in the next, and the (all) p50 was +74 %).
So both runs' ``(all)`` latency is judged at the baseline's mix: each endpoint's rows are thinned
until every endpoint has its baseline share. The failure rates move the same way when one endpoint
fails more than another (an endpoint at 10 % 502s sent 45 % of the requests, then 54 %: +0.9
points run-wide with no endpoint failing more), so the new run's ``(all)`` counts are weighted to
the baseline's share of requests. Each endpoint's own figures are judged as they are.
"""

from __future__ import annotations

import numpy as np

from analysis.compare.data import Counts, Latency


def shares(latency: dict[str, Latency], endpoints: list[str]) -> dict[str, float]:
    """Each endpoint's share of the good answers (every row, not the sample)."""
    total = sum(latency[e].n for e in endpoints)
    return {e: latency[e].n / total if total else 0.0 for e in endpoints}


def at_mix(latency: dict[str, Latency], endpoints: list[str], mix: dict[str, float]) -> Latency:
    """One run's good answers over ``endpoints`` with each endpoint's share of rows set to ``mix``.

    Each endpoint's rows (or its uniform sample) are thinned to evenly spaced order statistics,
    which keeps the endpoint's own distribution; the endpoint that runs out first sets the size.
    """
    room = [len(latency[e].ms) / mix[e] for e in endpoints if mix[e] > 0]
    size = min(room) if room else 0.0
    ms: list[np.ndarray] = []
    win: list[np.ndarray] = []
    for e in endpoints:
        lat = latency[e]
        keep = int(np.floor(size * mix[e] + 1e-9))
        if keep <= 0 or not len(lat.ms):
            continue
        order = np.argsort(lat.ms, kind="stable")
        pick = order[np.linspace(0, len(order) - 1, keep).round().astype(np.int64)]
        ms.append(lat.ms[pick])
        win.append(lat.window[pick])
    if not ms:
        return Latency(np.empty(0), np.empty(0, dtype=np.int32))
    return Latency(np.concatenate(ms), np.concatenate(win))


def _described(endpoints: list[str], mix: dict[str, float], theirs: dict[str, float]) -> str:
    ours, new_pct = (", ".join(f"{e} {m[e]:.0%}" for e in endpoints) for m in (mix, theirs))
    # the new run's mix only when it differs as printed
    return f"({ours})" + (f"; the new run's: {new_pct}" if new_pct != ours else "")


def standardised(
    base: dict[str, Latency], new: dict[str, Latency], endpoints: list[str]
) -> tuple[Latency, Latency, str] | None:
    """Both runs' ``(all)`` latency at the baseline's endpoint mix, and that mix described; None
    when there is no mix to keep (one endpoint, or an endpoint with no good answer in either run)."""
    if len(endpoints) < 2 or any(not base[e].n or not new[e].n for e in endpoints):
        return None
    mix, theirs = shares(base, endpoints), shares(new, endpoints)
    return (
        at_mix(base, endpoints, mix),
        at_mix(new, endpoints, mix),
        _described(endpoints, mix, theirs),
    )


def request_shares(windows: dict[str, Counts], endpoints: list[str]) -> dict[str, float]:
    """Each endpoint's share of all requests."""
    total = sum(float(windows[e].n.sum()) for e in endpoints)
    return {e: float(windows[e].n.sum()) / total if total else 0.0 for e in endpoints}


def counts_at_mix(
    windows: dict[str, Counts], endpoints: list[str], mix: dict[str, float]
) -> Counts:
    """One run's ``(all)`` counts per window with each endpoint's requests weighted to its share in
    ``mix``: the run-wide rate becomes the mix-weighted mean of the endpoints' own rates, the total
    stays the run's, and each window keeps its own counts (so bursts still widen the variance).
    ``windows`` are aligned: every endpoint has a count for every window of the run."""
    total = sum(float(windows[e].n.sum()) for e in endpoints)
    width = len(windows[endpoints[0]].n)
    n = np.zeros(width)
    events: dict[str, np.ndarray] = {}
    for e in endpoints:
        c = windows[e]
        weight = mix[e] * total / float(c.n.sum())
        n += weight * c.n
        for p, v in c.events.items():
            events[p] = events.get(p, np.zeros(width)) + weight * v
    has = n > 0
    return Counts(n[has], {p: v[has] for p, v in events.items()})


def standardised_counts(
    base: dict[str, Counts], new: dict[str, Counts], endpoints: list[str]
) -> tuple[Counts, str] | None:
    """The new run's ``(all)`` counts at the baseline's share of requests, and that mix described;
    None when there is no mix to keep (the baseline's counts are at its own mix already)."""
    if len(endpoints) < 2 or any(not base[e].n.sum() or not new[e].n.sum() for e in endpoints):
        return None
    mix, theirs = request_shares(base, endpoints), request_shares(new, endpoints)
    return counts_at_mix(new, endpoints, mix), _described(endpoints, mix, theirs)


def notes(latency: str | None, rates: str | None) -> list[str]:
    """What was judged at the baseline's mix: one note when the latency's mix (of good answers)
    and the rates' (of requests) print alike, else one each."""
    if latency is not None and latency == rates:
        return [
            f"(all) latency and failure rates are judged at the baseline's endpoint mix {latency}"
        ]
    out = []
    if latency is not None:
        out.append(
            f"(all) latency is judged at the baseline's endpoint mix of good answers {latency}"
        )
    if rates is not None:
        out.append(
            f"(all) failure rates are judged at the baseline's endpoint mix of requests {rates}"
        )
    return out
