"""`albprobe compare BASELINE NEW`: judge a run against a baseline (docs/compare.md).

data (DuckDB over each run's Parquet) -> figures per endpoint and overall -> judged together
(stats, judge) -> the verdicts' changes, throughput, targets -> gates. Pure except ``data.load``
and the verdict of a run that was never analysed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.compare import comparable, data, gates, judge, mix, verdicts
from analysis.compare.data import ALL, RunData
from analysis.compare.judge import Figure, Overall, Settings
from core.errors import AlbprobeError

__all__ = ["Comparison", "Settings", "compare_runs", "compare_data"]

USABLE_STATUS = ("complete",)


@dataclass
class Comparison:
    base: RunData
    new: RunData
    settings: Settings
    figures: list[Figure]
    overall: Overall
    differences: list[str] = field(default_factory=list)  # listed when forced
    notes: list[str] = field(default_factory=list)
    verdicts: dict[str, Any] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    new_causes: list[str] = field(default_factory=list)
    throughput: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    gates: list[gates.Gate] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if all(g.passed for g in self.gates) else 1

    def scope(self, scope: str) -> list[Figure]:
        return [f for f in self.figures if f.scope == scope]

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        return {
            "kind": "albprobe-compare",
            "version": 1,
            "baseline": {"path": str(self.base.path), "run_id": self.base.run_id},
            "new": {"path": str(self.new.path), "run_id": self.new.run_id},
            "overall": self.overall.to_dict(),
            "settings": {
                "alpha": s.alpha,
                "min_latency_effect": s.min_latency_effect,
                "min_rate_effect": s.min_rate_effect,
                "min_latency_ms": s.min_latency_ms,
                "min_requests": s.min_requests,
                "min_windows": s.min_windows,
                "correction": s.correction,
                "blocks": s.blocks,
                "window_s": {"baseline": self.base.window_s, "new": self.new.window_s},
            },
            "differences": self.differences,
            "notes": self.notes,
            "figures": [f.to_dict() for f in self.figures],
            "verdicts": self.verdicts,
            "changes": self.changes,
            "throughput": self.throughput,
            "targets": self.targets,
            "gates": [g.to_dict() for g in self.gates],
        }


def _status_problem(path: Path, meta: dict[str, Any]) -> str | None:
    st = meta.get("status")
    if st in USABLE_STATUS:
        return None
    why = f" ({meta['status_reason']})" if meta.get("status_reason") else ""
    return f"{path} is a {st or 'unfinished'} run{why}"


def compare_runs(
    base_path: str | Path,
    new_path: str | Path,
    *,
    settings: Settings | None = None,
    force: bool = False,
    fail_on: Sequence[str] = (),
    with_verdicts: bool = True,
) -> Comparison:
    """Compare two run directories. AlbprobeError (exit 2): a missing, partial or empty run,
    no endpoint in common, or incomparable runs without ``force``."""
    thresholds = gates.parse(fail_on)  # bad thresholds fail before any reading
    bp, np_ = Path(base_path), Path(new_path)
    bmeta, nmeta = data.read_meta(bp), data.read_meta(np_)
    forced: list[str] = []
    for p, m in ((bp, bmeta), (np_, nmeta)):
        problem = _status_problem(p, m)
        if problem and not force:
            raise AlbprobeError(
                f"{problem}: its figures are cut short",
                hint="compare complete runs, or pass --force to compare it anyway",
            )
        if problem:
            forced.append(problem)
    rows = min(_rows(bmeta), _rows(nmeta))
    both = verdicts.BothVerdicts(bp, np_, rows, bmeta) if with_verdicts else None
    try:
        new = data.load(np_, nmeta)  # the baseline meanwhile in a child, when both are large
        base = both.base_data() if both is not None else data.load(bp, bmeta)
        return compare_data(
            base,
            new,
            settings=settings,
            force=force,
            thresholds=thresholds,
            with_verdicts=with_verdicts,
            forced=forced,
            both=both,
        )
    finally:
        if both is not None:
            both.close()


def _rows(meta: dict[str, Any]) -> int:
    counts = meta.get("counts") or {}
    return int(counts.get("requests") or 0)


def compare_data(
    base: RunData,
    new: RunData,
    *,
    settings: Settings | None = None,
    force: bool = False,
    thresholds: Sequence[Any] = (),
    with_verdicts: bool = True,
    forced: Sequence[str] = (),
    both: verdicts.BothVerdicts | None = None,
) -> Comparison:
    s = settings or Settings()
    diffs, notes = comparable.differences(base.meta, new.meta, base.endpoints, new.endpoints)
    common = sorted(set(base.endpoints) & set(new.endpoints))
    if not common:
        raise AlbprobeError(
            f"{base.path} and {new.path} have no endpoint in common "
            f"({', '.join(base.endpoints) or 'none'} vs {', '.join(new.endpoints) or 'none'})",
            hint="compare two runs of the same endpoints (the same albprobe.toml)",
        )
    if diffs and not force:
        raise AlbprobeError(
            f"the runs are not comparable: {'; '.join(diffs)}",
            hint="compare runs of the same config, shape and target, or pass --force to list the differences and compare anyway",
        )
    scopes = [ALL, *common]
    figures: list[Figure] = []
    same_set = set(base.endpoints) == set(new.endpoints)
    mixed = mix.standardised(base.latency, new.latency, common) if same_set else None
    rated = (
        mix.standardised_counts(base.endpoint_windows, new.endpoint_windows, common)
        if same_set
        else None
    )
    notes = [*notes, *mix.notes(mixed and mixed[2], rated and rated[1])]
    for sc in scopes:
        b_lat, n_lat = (
            (mixed[0], mixed[1]) if sc == ALL and mixed else (base.latency[sc], new.latency[sc])
        )
        n_counts = rated[0] if sc == ALL and rated else new.counts[sc]
        figures += judge.latency_figures(sc, b_lat, n_lat, s)
        figures += judge.rate_figures(sc, base.counts[sc], n_counts, s)
    dropped = judge.dropped_figure(base, new, s)
    if dropped is not None:
        figures.append(dropped)
    figures += judge.cors_figures(base, new, scopes)
    judge.judge(figures, s)
    cmp = Comparison(base, new, s, figures, judge.overall(figures, s), [*forced, *diffs], notes)
    if with_verdicts:
        both = both or verdicts.BothVerdicts(base.path, new.path, 0)
        (bv, bsrc), (nv, nsrc) = both.get()
        cmp.verdicts = {"baseline": verdicts.summary(bv, bsrc), "new": verdicts.summary(nv, nsrc)}
        cmp.changes = verdicts.changes(bv, nv)
        cmp.new_causes = verdicts.new_cause_ids(bv, nv)
    cmp.throughput = {"baseline": throughput(base), "new": throughput(new)}
    cmp.targets = target_rows(base, new)
    judgement = gates.Gate(
        "judgement",
        cmp.overall.result != "fail",
        None,
        f"overall {cmp.overall.result}"
        + (f": {cmp.overall.reasons[0]}" if cmp.overall.reasons else ""),
    )
    cmp.gates = [
        judgement,
        *gates.evaluate(list(thresholds), gates.measured(figures, len(cmp.new_causes))),
    ]
    return cmp


def throughput(rd: RunData) -> dict[str, Any]:
    """Achieved against intended: requests per second of the run, and the open model's
    scheduled and dropped iterations."""
    counts = rd.meta.get("counts") or {}
    out: dict[str, Any] = {
        "requests": rd.requests,
        "span_s": rd.span_s,
        "achieved_rps": rd.requests / rd.span_s if rd.span_s else None,
    }
    if rd.scheduled is not None:
        sched, drop = float(rd.scheduled.sum()), float(rd.dropped.sum())  # type: ignore[union-attr]
        out |= {
            "scheduled": sched,
            "dropped": drop,
            "intended_iterations_per_s": sched / rd.span_s if rd.span_s else None,
            "achieved_iterations_per_s": (sched - drop) / rd.span_s if rd.span_s else None,
        }
    elif counts.get("scheduled_iterations"):
        out |= {
            "scheduled": counts.get("scheduled_iterations"),
            "dropped": counts.get("dropped_iterations"),
        }
    return out


def target_rows(base: RunData, new: RunData) -> list[dict[str, Any]]:
    """Per-target share of requests, p95 and 5xx, side by side (only with several targets)."""
    names = sorted(set(base.targets) | set(new.targets))
    if len(names) < 2:
        return []
    bt = sum(t["requests"] for t in base.targets.values()) or 1
    nt = sum(t["requests"] for t in new.targets.values()) or 1
    rows = []
    for name in names:
        b, n = base.targets.get(name, {}), new.targets.get(name, {})
        rows.append(
            {
                "target": name,
                "share_baseline": b.get("requests", 0) / bt,
                "share_new": n.get("requests", 0) / nt,
                "p95_ms_baseline": b.get("p95_ms"),
                "p95_ms_new": n.get("p95_ms"),
                "n5xx_baseline": b.get("n5xx", 0),
                "n5xx_new": n.get("n5xx", 0),
            }
        )
    return rows
