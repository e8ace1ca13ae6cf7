"""Each run's verdict and ranked causes (the public verdict API), and what changed between them."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

from analysis import pipeline
from analysis.compare import data
from analysis.compare.data import RunData
from analysis.verdict import Cause, Verdict


def run_verdict(path: Path) -> tuple[Verdict, str]:
    """The verdict `albprobe analyze` wrote (report/summary.json) when there is one, else the
    run analysed now (nothing written); the second value says which."""
    summary = path / "report" / "summary.json"
    if summary.exists():
        try:
            d = json.loads(summary.read_text(encoding="utf-8"))
            return _from_summary(d), str(summary)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: analyse again
    return pipeline.analyze_run(path, write=False).verdict, "analysed now"


# Below this many rows per run, reading the two runs one after the other costs less than
# starting a second Python process with the analysis imported (about a second).
PARALLEL_ROWS = 500_000


class BothVerdicts:
    """The baseline's data and the two runs' verdicts. When both runs are large, a child process
    started at once reads the baseline (its comparison data, then its verdict: from its
    summary.json, or analysed now) while this process reads the new run (and analyses it when
    it was never analysed): on two cores the comparison then costs about one run's reading (and
    analysis), not two."""

    def __init__(
        self, base: Path, new: Path, rows: int, base_meta: dict[str, Any] | None = None
    ) -> None:
        self.base, self.new = base, new
        self._meta = base_meta
        self._child: Any = None
        self._conn: Any = None
        if rows >= PARALLEL_ROWS:
            # spawn, not fork: DuckDB's threads in this process must not be forked
            ctx = multiprocessing.get_context("spawn")
            self._conn, child_end = ctx.Pipe(duplex=False)
            self._child = ctx.Process(
                target=_baseline_to, args=(base, base_meta, child_end), daemon=True
            )
            self._child.start()
            child_end.close()

    def base_data(self) -> RunData:
        """The baseline's comparison data: from the child (its first message), else read here."""
        if self._child is not None:
            got = self._receive()
            if got is not None:
                return got
            self.close()  # the child died: everything it would have sent is made here
        return data.load(self.base, self._meta)

    def get(self) -> tuple[tuple[Verdict, str], tuple[Verdict, str]]:
        try:
            nv = run_verdict(self.new)
            bv = None
            if self._child is not None:
                bv = self._receive()
            if bv is None:
                bv = run_verdict(self.base)
        finally:
            self.close()
        return bv, nv

    def _receive(self) -> Any:
        """The child's next message, or None when it died (out of memory, killed)."""
        try:
            ok, value = self._conn.recv()
        except EOFError:
            return None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """End the child if it still runs (an error elsewhere ends the comparison)."""
        if self._child is not None:
            if self._child.is_alive():
                self._child.terminate()
            self._child.join()
            self._conn.close()
            self._child = None


def _baseline_to(path: Path, meta: dict[str, Any] | None, conn: Any) -> None:
    """The child: the baseline's comparison data, then its verdict, each one message."""
    try:
        conn.send((True, data.load(path, meta)))
        conn.send((True, run_verdict(path)))
    except BaseException as exc:  # sent back and raised there: one error path
        conn.send((False, exc))
    finally:
        conn.close()


def _from_summary(d: dict[str, Any]) -> Verdict:
    causes = [
        Cause(
            str(c["id"]),
            float(c["strength"]),
            list(c.get("evidence") or []),
            str(c.get("fix") or ""),
        )
        for c in d.get("causes") or []
    ]
    return Verdict(str(d["at_fault"]), str(d["headline"]), causes)


def changes(base: Verdict, new: Verdict) -> list[str]:
    """Sentences: the party at fault, causes that appeared or went, strengths that moved."""
    out = []
    if base.at_fault != new.at_fault:
        out.append(f"at fault: {base.at_fault} -> {new.at_fault}")
    bc = {c.id: c for c in base.causes}
    nc = {c.id: c for c in new.causes}
    for cid, c in nc.items():
        if cid not in bc:
            ev = f": {c.evidence[0]}" if c.evidence else ""
            out.append(f"new cause: {cid} (strength {c.strength:.2f}){ev}")
        elif c.strength - bc[cid].strength >= 0.2:
            out.append(f"stronger cause: {cid} ({bc[cid].strength:.2f} -> {c.strength:.2f})")
    for cid, c in bc.items():
        if cid not in nc:
            out.append(f"cause gone: {cid} (was {c.strength:.2f})")
    return out


def new_cause_ids(base: Verdict, new: Verdict) -> list[str]:
    have = {c.id for c in base.causes}
    return [c.id for c in new.causes if c.id not in have]


def summary(v: Verdict, source: str) -> dict[str, Any]:
    return {
        "at_fault": v.at_fault,
        "headline": v.headline,
        "causes": [{"id": c.id, "strength": round(c.strength, 3)} for c in v.causes],
        "from": source,
    }
