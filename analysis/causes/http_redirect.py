"""The front end calls http://: the port-80 listener redirects and the browser refuses."""

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

ID = "http-redirect"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "requests.preflight-redirect": 0.9,
    "requests.redirect-no-cors": 0.5,
    "haproxy.redirect": 0.4,
}


def judge(fig: Figures, ctx: Context) -> Cause | None:
    """The front end calls http://; the ALB's port-80 listener redirects and the browser refuses."""
    rel = release_of(fig)
    pre, act = val(rel.get("redirect_preflights")), val(rel.get("redirect_actuals"))
    if not pre and not act:
        return None
    sc = Score(WEIGHTS, fig, ctx)
    if pre:
        sc.add(
            "requests.preflight-redirect",
            pre / max(1.0, val(fig.preflight)) * 2,
            f"{cnt(pre)} preflights were answered with a redirect by the proxy; Chromium: "
            "'Redirect is not allowed for a preflight request.'",
        )
    if act:
        sc.add(
            "requests.redirect-no-cors",
            act / max(1.0, val(fig.actual)) * 2,
            f"{cnt(act)} requests got the proxy's redirect without CORS headers",
        )
    lines = val(rel.get("redirect_log_lines"))
    if lines:
        sc.add(
            "haproxy.redirect",
            1.0,
            f"proxy log: {cnt(lines)} requests answered by the HTTP listener's redirect to HTTPS "
            "(LR--, no target)",
        )
    origin = fig.origin or "the front end"
    return Cause(
        "http-redirect",
        sc.strength,
        sc.evidence,
        f"Call the API over https:// from {origin} (the API base URL starts with http://); the "
        "ALB's port-80 listener only redirects to HTTPS, and a browser never follows a redirect "
        "of a preflight.",
        sc.signals,
    )


SPEC = CauseSpec(
    "http-redirect",
    WEIGHTS,
    judge,
    explained=release_explained("redirect_preflights", "redirect_actuals"),
    target_split=False,
)
