"""A worker killed by the OOM killer (SIGKILL without WORKER TIMEOUT) and its request's 502."""

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

ID = "worker-kill"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "gunicorn.oom-kill": 0.6,
    "gunicorn.failures-near-kill": 0.7,
}


def judge(fig: Figures, ctx: Context) -> Cause | None:
    """The OOM killer's pattern: a worker SIGKILLed without a WORKER TIMEOUT, and its request's 502."""
    rel = release_of(fig)
    kills, near = val(rel.get("oom_kills")), val(rel.get("near_kill"))
    if not kills or not near:
        return None
    sc = Score(WEIGHTS, fig, ctx)
    pids = ", ".join(str(p) for p in (rel.get("oom_pids") or [])[:5])
    sc.add(
        "gunicorn.oom-kill",
        kills,
        f"gunicorn: 'Worker (pid:{pids}) was sent SIGKILL! Perhaps out of memory?' x{cnt(kills)}, "
        "with no WORKER TIMEOUT of that worker before it (not gunicorn's timeout kill)",
    )
    total = max(1.0, val(rel.get("failures")))
    sc.add(
        "gunicorn.failures-near-kill",
        near / total * 2,
        f"{cnt(near)} of {cnt(total)} proxy failures within {NEAR_S:g} s of the kill: the "
        "request that worker was serving got the proxy's 502",
    )
    return Cause(
        "worker-kill",
        sc.strength,
        sc.evidence,
        "Find what ate the memory: `dmesg -T | grep -i -E 'killed process|oom'` on the instance, "
        "`docker stats academy-api`; give the container more memory or fewer workers, and cap a "
        "leaking worker with gunicorn `--max-requests 1000 --max-requests-jitter 100`.",
        sc.signals,
    )


SPEC = CauseSpec("worker-kill", WEIGHTS, judge, explained=release_explained("near_kill"))
