"""What every cause module shares: the Cause record, the noisy-OR score, the figure helpers.

A cause is one module under analysis/causes/ with a ``SPEC`` (analysis/causes/registry.py lists
them): its signals and their weights, ``judge`` (figures -> Cause or None) and, for the ranking,
``explained`` (how many failures its own failure mode accounts for). A signal ``s`` in [0, 1]
with weight ``w`` contributes ``1 - w*s`` to a noisy-OR, so strength = 1 - prod(1 - w*s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from analysis.figures import Figures

MIN_REQUESTS = 50
MIN_STRENGTH = 0.2  # causes weaker than this are not listed
REFUSED_REASONS = ("L4CON", "Target.FailedHealthChecks", "SOCKERR")
TIMEOUT_REASONS = ("L4TOUT", "Target.Timeout")  # connect-level: unreachable
BUSY_REASONS = ("L7TOUT",)  # connected, no HTTP answer in time: workers busy
STATUS_REASONS = ("L7STS", "Target.ResponseCodeMismatch", "L7RSP")
SOURCE_NAMES = {
    "health": "target health samples",
    "haproxy": "the proxy log",
    "alb": "the ALB log",
    "requests": "the recorded requests",
    "gunicorn": "the gunicorn log",
    "events": "the run's events",
    "config": "the run's configuration",
}
# What the figures were read from: a load run (albprobe run) or ALB access logs alone.
Context = Literal["run", "alb-logs"]


@dataclass(frozen=True)
class Window:
    """When and where a cause struck: what ``albprobe replay`` injects, at ``offset_s`` into the
    window it replays (epoch seconds; ``target`` None = every target / none routable)."""

    first_ts: float
    last_ts: float
    offset_s: float
    target: str | None = None

    def describe(self) -> str:
        """'struck 2026-11-26 07:34:31 to 07:35:09 UTC (151 s into the window) on
        10.0.2.108:8000': the day too (a window of logs can span days, and the time is what a
        user types into --since), the end's day only when it is another."""
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.first_ts))
        same_day = time.gmtime(self.first_ts)[:3] == time.gmtime(self.last_ts)[:3]
        until = time.strftime(
            "%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.gmtime(self.last_ts)
        )
        on = f" on {self.target}" if self.target else ""
        return f"struck {start} to {until} UTC ({_offset(self.offset_s)} into the window){on}"


def _offset(s: float) -> str:
    """151 s, 25 min, 7.6 h: how far into the window, readable at any window length."""
    if s < 600:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


@dataclass
class Cause:
    id: str
    strength: float
    evidence: list[str]
    fix: str
    signals: list[str] = field(default_factory=list)  # the WEIGHTS signals that fired
    window: Window | None = None  # set by the causes that can date themselves (ALB log patterns)

    @property
    def sources(self) -> list[str]:
        """The independent sources behind the cause (health, haproxy, requests, ...)."""
        return sorted({s.split(".")[0] for s in self.signals})

    def to_dict(self) -> dict[str, Any]:
        """summary.json's cause (id, strength, evidence, fix, window when known); signals stay
        internal."""
        d = asdict(self)
        d.pop("signals")
        if d["window"] is None:
            d.pop("window")
        return d


Judge = Callable[[Figures, Context], "Cause | None"]


def _none(_fig: Figures) -> float | None:
    return None


@dataclass(frozen=True)
class CauseSpec:
    """One cause, as the verdict sees it (registered in analysis/causes/registry.py)."""

    id: str
    weights: dict[str, float]
    judge: Judge
    # failures its own failure mode explains, for the ranking (None: the logs cannot tell)
    explained: Callable[[Figures], float | None] = _none
    # the "1 of N targets" split goes into its evidence (not for causes of a whole deploy)
    target_split: bool = True
    # a finding even when no request failed (e.g. a target leaving and coming back in the log)
    without_failures: bool = False


def val(v: float | None) -> float:
    """A count or rate, with "not measured" (None) read as 0 where the verdict adds things up."""
    return float(v) if v is not None else 0.0


def pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else f"{100 * x:.3f}%"


def cnt(x: float) -> str:
    return f"{int(x):,}"


def clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def request_sample(fig: Figures, ctx: Context) -> float:
    """How far the recorded requests can be trusted for rates: 1 at >= MIN_REQUESTS."""
    if ctx == "alb-logs":
        return 1.0
    return min(1.0, fig.requests / MIN_REQUESTS)


def span(ctx: Context) -> str:
    return "the log window" if ctx == "alb-logs" else "the run"


class Score:
    """Noisy-OR accumulator with the evidence sentences of the signals that fired; each signal's
    weight comes from the cause's weights (an unknown signal is a KeyError, not a silent weight)."""

    def __init__(self, weights: dict[str, float], fig: Figures, ctx: Context) -> None:
        self.weights = weights
        self.sample = request_sample(fig, ctx)
        self.miss = 1.0
        self.evidence: list[str] = []
        self.signals: list[str] = []

    def add(self, signal: str, value: float, sentence: str) -> None:
        weight = self.weights[signal]
        # Signals read from the recorded requests count in proportion to how many there are:
        # a handful of requests cannot carry a failure rate, the health samples and logs still can.
        s = clip(value) * (self.sample if signal.startswith("requests.") else 1.0)
        if s <= 0:
            return
        self.miss *= 1 - weight * s
        self.evidence.append(sentence)
        self.signals.append(signal)

    def damp(self, factor: float, sentence: str | None = None) -> None:
        """Counter-evidence: scale the strength down."""
        self.miss = 1 - (1 - self.miss) * clip(factor)
        if sentence:
            self.evidence.append(sentence)

    @property
    def strength(self) -> float:
        return round(1 - self.miss, 3)


def health_reason_samples(fig: Figures, reasons: tuple[str, ...]) -> tuple[int, str | None]:
    count, desc = 0, None
    for r in fig.health_reasons or []:
        if r.get("state") in ("unhealthy", "initial", "draining") and r.get("reason") in reasons:
            count += int(r.get("samples") or 0)
            if desc is None:  # "L7STS: 400 Bad Request", the reason code first
                d = r.get("description")
                desc = f"{r.get('reason')}: {d}" if d else str(r.get("reason"))
    return count, desc


def conditional(fig: Figures) -> tuple[float, str] | None:
    ru, rh = fig.failure_rate_unhealthy, fig.failure_rate_healthy
    if ru is None:
        return None
    rh = rh or 0.0
    lift = clip((ru - rh) / ru) if ru > 0 else 0.0
    share = fig.share_failures_while_unhealthy
    text = (
        f"failure rate {pct(ru)} while a target was unhealthy vs {pct(rh)} while all were healthy"
        + (f"; {pct(share)} of failures fell in unhealthy periods" if share is not None else "")
    )
    lag = fig.health_failure_lag_s
    if lag is not None and fig.health_failure_r is not None:
        text += f" (lagged correlation r={fig.health_failure_r:.2f} at {lag:+d} s)"
    return lift, text


def hap(fig: Figures, cls: str) -> float:
    return float((fig.haproxy_classes or {}).get(cls, 0))


def hap_5xx(fig: Figures) -> float:
    return val(fig.haproxy_5xx)


def busy_health(fig: Figures) -> tuple[int, int, float]:
    """Health checks that connected but got no answer in time (L7TOUT): (samples, samples with
    every slot busy, signal).
    Only samples taken under the load while every slot at the target was busy count as
    "workers busy"; the others are a cold start before the load or a stalled checker. (Samples
    without an in-flight reading, as from AWS, count.)"""
    count = full = 0
    for r in fig.health_reasons:
        if (
            r.get("state") in ("unhealthy", "initial", "draining")
            and r.get("reason") in BUSY_REASONS
        ):
            count += int(r.get("samples") or 0)
            full += int(r.get("at_capacity", r.get("samples")) or 0)
    return count, full, min(1.0, full / 3)


def hc_port(fig: Figures) -> int:
    hc = (fig.proxy or {}).get("health_check") or {}
    return int(hc.get("port") or 8000)


def release_of(fig: Figures) -> dict[str, Any]:
    return fig.release or {}


def release_explained(*keys: str) -> Callable[[Figures], float | None]:
    """``explained`` for the causes the release figures count (analysis/release.py)."""

    def count(fig: Figures) -> float | None:
        r = release_of(fig)
        return sum(val(r.get(k)) for k in keys)

    return count


def haproxy_explained(*classes: str) -> Callable[[Figures], float | None]:
    """``explained`` as the HAProxy termination classes the cause produces (None: no proxy log)."""

    def count(fig: Figures) -> float | None:
        if not fig.haproxy_classes:
            return None
        return sum(hap(fig, k) for k in classes)

    return count
