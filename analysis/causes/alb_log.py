"""Reading the ALB log's incident figures (analysis/alb_patterns.py) for the log-only causes:
the targets, the ALB's own failures per target, and the time window a cause struck in."""

from __future__ import annotations

import time
from typing import Any

from analysis.causes.base import Window
from analysis.figures import Figures

CONNECT = ("connect_fail", "connect_timeout")
# A target's failures within this many seconds are a cut (its in-flight requests at one moment,
# as when it is stopped); longer, a burst (a target dying under its requests).
CUT_S = 6.0
CLOSES = ("closed_at_once", "closed_mid_request", "timeout_kill")


def patterns(fig: Figures) -> dict[str, Any] | None:
    return fig.alb_patterns


def own(t: dict[str, Any]) -> int:
    """The ALB-generated failures of one target (its own 5xx left out: the app answered)."""
    return sum(v for k, v in (t.get("fails") or {}).items() if k != "target_5xx")


def alb_5xx(pat: dict[str, Any]) -> int:
    return sum(v for k, v in (pat.get("kinds") or {}).items() if k != "target_5xx")


def worst(pat: dict[str, Any]) -> dict[str, Any] | None:
    """The target with the most ALB-generated failures (None: none failed)."""
    ts = [t for t in pat.get("targets") or [] if own(t)]
    return max(ts, key=own) if ts else None


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))  # the ALB logs UTC


def window(pat: dict[str, Any], first: float, last: float, target: str | None) -> Window:
    return Window(
        first_ts=round(first, 3),
        last_ts=round(last, 3),
        offset_s=round(first - float(pat["first_ts"]), 3),
        target=target,
    )


def served_meanwhile(pat: dict[str, Any], target: str) -> int:
    """Requests the other targets answered (the whole window)."""
    return sum(int(t["ok"]) for t in pat.get("targets") or [] if t["target"] != target)


# A target "refused everything for a stretch" (an app down; not a stray refusal now and then, as
# from a full backlog) when at least this share of the requests routed to it, from its first
# refused connect to its last, were refused
REFUSED_ALL = 0.8


def refused_all(t: dict[str, Any]) -> bool:
    """The target refused (nearly) every request routed to it from its first refused connect to
    its last (502 -1/-1/-1): nothing listened on its port then."""
    refused = int((t.get("fails") or {}).get("connect_fail", 0))
    return refused >= 3 and refused / max(1, int(t.get("during_refused") or 0)) >= REFUSED_ALL


def stopped(pat: dict[str, Any]) -> list[dict[str, Any]]:
    """Targets that served on their address, then refused every connect to the end of the window:
    the app on them stopped listening on the port it had served on (crashed or stopped, and not
    back yet). Most refused first. A port refused from the first request is ambiguous (a wrong
    port, or an app down all along); one that came back is ``came_back``."""
    out = [
        t
        for t in pat.get("targets") or []
        if refused_all(t)
        and int(t.get("answered_before_refused") or 0) > 0
        and not int(t.get("answered_after_refused") or 0)
    ]
    return sorted(out, key=lambda t: -int(t["fails"]["connect_fail"]))


def came_back(pat: dict[str, Any]) -> list[dict[str, Any]]:
    """Targets that refused every connect (502 -1/-1/-1) for a stretch and then answered again on
    the same address: the app on them was down (crashed, killed, restarted) and came back. Most
    refused first. One that never answered again is ``stopped`` (or a crash, or a port nothing
    ever listened on)."""
    out = [
        t
        for t in pat.get("targets") or []
        if refused_all(t) and int(t.get("answered_after_refused") or 0) > 0
    ]
    return sorted(out, key=lambda t: -int(t["fails"]["connect_fail"]))
