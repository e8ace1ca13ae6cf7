"""The ``(all)`` scope's latency at one endpoint mix, so that a change of mix alone is no regression.

Users pick endpoints at random, so two runs of one build send each endpoint a slightly different
share of the requests. When the endpoints differ in speed, the run-wide quantiles move with that
share alone: with a 300 ms and a 600 ms endpoint sent about half each, the run-wide median sits
where the two meet and jumps from one to the other when the share moves a few points (measured on
the testbed: 55 % of the fast endpoint in one run, 46 % in the next, and the (all) p50 was +74 %).
So both runs' ``(all)`` latency is judged at the baseline's mix: each endpoint's rows are thinned
until every endpoint has its baseline share. Each endpoint's own figures are judged as they are.
"""

from __future__ import annotations

import numpy as np

from analysis.compare.data import Latency


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


def standardised(
    base: dict[str, Latency], new: dict[str, Latency], endpoints: list[str]
) -> tuple[Latency, Latency, str] | None:
    """Both runs' ``(all)`` latency at the baseline's endpoint mix, and a note saying so; None when
    there is no mix to keep (one endpoint, or an endpoint with no good answer in either run)."""
    if len(endpoints) < 2 or any(not base[e].n or not new[e].n for e in endpoints):
        return None
    mix, theirs = shares(base, endpoints), shares(new, endpoints)
    ours, new_pct = (", ".join(f"{e} {m[e]:.0%}" for e in endpoints) for m in (mix, theirs))
    note = f"(all) latency is judged at the baseline's endpoint mix ({ours})"
    if new_pct != ours:  # only a mix that differs as printed
        note += f"; the new run's: {new_pct}"
    return at_mix(base, endpoints, mix), at_mix(new, endpoints, mix), note
