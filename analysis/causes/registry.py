"""The one list of causes. Adding a cause = a module with a ``SPEC`` + one line here; the
verdict's ranking, caveats and headline (analysis/verdict.py) never name a cause."""

from __future__ import annotations

from analysis.causes import (
    capacity,
    connectivity,
    cors,
    deploy,
    fixed_response,
    flapping,
    health_check,
    http_redirect,
    keepalive,
    no_target,
    target_crash,
    target_down,
    target_timeout,
    worker_kill,
    worker_recycle,
)
from analysis.causes.base import CauseSpec

# Proxy-side causes, in the order they are judged (ties in strength keep this order).
PROXY: tuple[CauseSpec, ...] = (
    target_down.SPEC,
    capacity.SPEC,
    keepalive.SPEC,
    health_check.SPEC,
    connectivity.SPEC,
    deploy.SPEC,
    worker_kill.SPEC,
    worker_recycle.SPEC,
    http_redirect.SPEC,
    # read from the ALB access log alone (analysis/alb_patterns.py)
    target_crash.SPEC,
    no_target.SPEC,
    target_timeout.SPEC,
    flapping.SPEC,
    fixed_response.SPEC,
)
CORS: CauseSpec = cors.SPEC
ALL: tuple[CauseSpec, ...] = (*PROXY, CORS)
BY_ID: dict[str, CauseSpec] = {c.id: c for c in ALL}
