"""The CORS setup: app-produced responses that fail the browser's CORS check."""

from __future__ import annotations

from analysis.causes.base import (
    Cause,
    CauseSpec,
    Context,
    Score,
    cnt,
    pct,
    val,
)
from analysis.figures import Figures

ID = "cors-setup"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "requests.app-cors-fail": 1.0,
}


def judge(fig: Figures, ctx: Context) -> Cause | None:
    bad = val(fig.app_cors_fail)
    if not bad:
        return None
    rate = val(fig.app_cors_fail_rate)
    steps = fig.app_cors_steps or []
    top = steps[0] if steps else {}
    origin = fig.origin or "the page origin"
    sc = Score(WEIGHTS, fig, ctx)
    sc.add(
        "requests.app-cors-fail",
        max(rate, 0.3 if bad >= 3 else 0.1),
        f"{cnt(bad)} of {cnt(val(fig.app_responses))} app-produced responses ({pct(rate)}) failed the browser's CORS check for {origin}"
        + (f" at step '{top.get('step')}': {top.get('message')}" if top else ""),
    )
    step = str(top.get("step") or "")
    if "credential" in step:
        fix = f"Set CORS_ALLOW_CREDENTIALS = True and list '{origin}' in CORS_ALLOWED_ORIGINS (django-cors-headers; no wildcard with credentials)."
    elif "method" in step or "header" in step:
        fix = "Allow the request's methods/headers: extend CORS_ALLOW_METHODS / CORS_ALLOW_HEADERS (django-cors-headers)."
    else:
        fix = f"Add '{origin}' to CORS_ALLOWED_ORIGINS (django-cors-headers) and make sure CorsMiddleware sits above CommonMiddleware."
    return Cause("cors-setup", sc.strength, sc.evidence, fix, sc.signals)


SPEC = CauseSpec("cors-setup", WEIGHTS, judge, target_split=False)
