"""--max-requests recycling, when it fails requests."""

from __future__ import annotations

from analysis.causes.base import (
    Cause,
    CauseSpec,
    Context,
    Score,
    cnt,
    release_explained,
    release_of,
    val,
)
from analysis.figures import Figures
from analysis.release import NEAR_S

ID = "worker-recycle"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "gunicorn.recycle": 0.3,
    "gunicorn.failures-near-recycle": 0.7,
}


def judge(fig: Figures, ctx: Context) -> Cause | None:
    """max-requests recycling, only when it actually produced failures."""
    rel = release_of(fig)
    rec, near = val(rel.get("recycles")), val(rel.get("near_recycle"))
    if not rec or not near:
        return None
    sc = Score(WEIGHTS, fig, ctx)
    sc.add(
        "gunicorn.recycle",
        1.0,
        f"gunicorn: 'Autorestarting worker after current request.' x{cnt(rec)} (--max-requests)",
    )
    total = max(1.0, val(rel.get("failures")))
    sc.add(
        "gunicorn.failures-near-recycle",
        near / total * 2,
        f"{cnt(near)} of {cnt(total)} proxy failures within {NEAR_S:g} s of a recycle",
    )
    return Cause(
        "worker-recycle",
        sc.strength,
        sc.evidence,
        "A recycling worker closes its kept-alive connections: keep gunicorn's --keep-alive above "
        "the ALB idle timeout and use gthread workers, or raise --max-requests (with "
        "--max-requests-jitter) so recycles are rare.",
        sc.signals,
    )


SPEC = CauseSpec("worker-recycle", WEIGHTS, judge, explained=release_explained("near_recycle"))
