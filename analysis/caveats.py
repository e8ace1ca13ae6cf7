"""Caveats: what limits the verdict's figures although every input was present (missing inputs
are the verdict's ``missing_evidence``). Pure over the figures."""

from __future__ import annotations

from analysis.figures import Figures


def caveats(fig: Figures) -> list[str]:
    out = []
    gaps = fig.worker_gaps or []
    if gaps:
        t0 = fig.first_ts or min(float(g["from"]) for g in gaps)
        spans = ", ".join(
            f"{g['worker_id']} from {float(g['from']) - t0:.0f} s to "
            f"{float(g['to'] if g.get('to') is not None else g['from']) - t0:.0f} s "
            f"({g.get('reason') or 'lost'})"
            for g in gaps
        )
        seconds = fig.worker_gap_seconds
        out.append(
            f"load incomplete: lost Locust worker{'s' if len(gaps) > 1 else ''} {spans}; the "
            "requests it would have sent are missing there, so the rate-based figures (load per "
            "second, onset load, load against capacity, low-load share) leave "
            + (f"those {seconds} s out" if seconds is not None else "those seconds out")
        )
    return out
