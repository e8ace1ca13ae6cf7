"""Two tune sessions (tune.json) side by side: the knee, the USL fit and the recommendation.

A session has one knee and one fit per pass, not samples of them, so there is no test to run:
the knee is judged against the minimum latency effect as a plain threshold (a knee more than
10 % lower is a regression), the rest is shown side by side (docs/compare.md)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.compare.judge import Settings
from core.errors import AlbprobeError

# (label, path in tune.json)
ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("knee req/s", ("before", "knee", "rps")),
    ("knee p99 ms", ("before", "knee", "p99_ms")),
    ("USL lambda (req/s per unit of concurrency)", ("before", "usl", "lambda")),
    ("USL sigma (contention)", ("before", "usl", "sigma")),
    ("USL kappa (coherency)", ("before", "usl", "kappa")),
    ("USL peak concurrency", ("before", "usl", "peak_concurrency")),
    ("USL peak req/s", ("before", "usl", "peak_rps")),
    ("recommended workers", ("recommendation", "workers")),
    ("recommended threads", ("recommendation", "threads")),
    ("recommended worker class", ("recommendation", "worker_class")),
    ("recommended capacity req/s", ("recommendation", "capacity_rps")),
    ("after: knee req/s", ("after", "knee", "rps")),
    ("proof holds", ("proof", "holds")),
)


def is_session(path: Path) -> bool:
    return (path / "tune.json").is_file()


def _get(d: Any, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


@dataclass
class TuneComparison:
    base: Path
    new: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    result: str = "pass"
    reasons: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.result == "fail" else 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "albprobe-compare-tune", "version": 1} | {
            k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()
        }


def load(path: Path) -> dict[str, Any]:
    try:
        d = json.loads((path / "tune.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AlbprobeError(
            f"{path / 'tune.json'}: unreadable ({exc})", hint="re-run `albprobe tune`"
        ) from exc
    if not isinstance(d, dict) or "before" not in d:
        raise AlbprobeError(
            f"{path / 'tune.json'}: not a tune session's result",
            hint="pass folders `albprobe tune` wrote",
        )
    return d


def compare_sessions(base: Path, new: Path, settings: Settings | None = None) -> TuneComparison:
    s = settings or Settings()
    b, n = load(base), load(new)
    if b.get("target") != n.get("target") or b.get("slo") != n.get("slo"):
        raise AlbprobeError(
            f"the tune sessions are not comparable: target {b.get('target')!r} / {n.get('target')!r}, "
            f"SLO {b.get('slo')} / {n.get('slo')}",
            hint="compare sessions tuned against the same target and SLO",
        )
    out = TuneComparison(base, new)
    for label, keys in ROWS:
        bv, nv = _get(b, keys), _get(n, keys)
        row: dict[str, Any] = {"figure": label, "baseline": bv, "new": nv, "change": None}
        if (
            isinstance(bv, int | float)
            and isinstance(nv, int | float)
            and not isinstance(bv, bool)
            and bv
        ):
            row["change"] = nv / bv - 1
        out.rows.append(row)
        ch = row["change"]
        if label == "knee req/s" and ch is not None and ch < -s.min_latency_effect:
            out.result = "fail"
            out.reasons.append(f"the knee fell {ch:+.0%} ({bv:.1f} -> {nv:.1f} req/s)")
    return out
