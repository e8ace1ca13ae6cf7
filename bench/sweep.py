"""Verdict sweep: seeded random testbed scenarios, each run for real, verdict vs injected cause.

    make sweep                       # SWEEP_N=60 SWEEP_SEED=1000 by default
    python bench/sweep.py --n 5 --seed 1000 --keep /tmp/sweep   # keep the run directories
    python bench/sweep.py --reanalyze /tmp/sweep                 # re-judge kept runs (no load)
    python bench/sweep.py --only 1004                            # replay one seed

Each scenario (bench/sweep_scenarios.py) is recorded in a subprocess through the runner, as
`albprobe run -c <scenario>.toml --no-analyze --fault ...` would (the runner brings the testbed up
and down itself; the listener, a slow app boot and the check timeout are handed to the testbed
directly), then analyzed offline with analysis.pipeline.analyze_run. A benchmark, not a test:
60 scenarios take about 35 minutes. Prints the accuracy on at_fault and on the top cause, per
injected kind and per expected cause, a confusion table (injected kind x
verdict) and the failing seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.sweep_scenarios import CONTROLS, Scenario, generate  # noqa: E402


@dataclass
class Outcome:
    scenario: Scenario
    at_fault: str
    top: str | None
    causes: list[tuple[str, float]]
    headline: str
    seconds: float
    error: str | None = None

    @property
    def at_fault_ok(self) -> bool:
        return self.at_fault == self.scenario.expected[0]

    @property
    def top_ok(self) -> bool:
        want = self.scenario.expected[1]
        if self.scenario.fault in CONTROLS:
            # controls: no proxy cause may be named at all (cors-misconfig: only cors-setup)
            named = {c for c, _s in self.causes}
            return named == ({want} if want else set())
        return self.top == want

    @property
    def ok(self) -> bool:
        return self.error is None and self.at_fault_ok and self.top_ok


def record(sc: Scenario, runs: Path) -> Path:
    """Run the scenario against the local testbed, in a process of its own (as `albprobe run`
    would be); returns its run directory."""
    run_id = f"sweep-{sc.seed}"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"{run_id}.toml").write_text(sc.config_toml(), encoding="utf-8")
    (runs / f"{run_id}.json").write_text(json.dumps({"seed": sc.seed}), encoding="utf-8")
    cmd = [sys.executable, str(Path(__file__)), "--record", str(sc.seed), "--keep", str(runs)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("ALBPROBE_AUTHORIZATION", None)
    if sc.authorization:
        env["ALBPROBE_AUTHORIZATION"] = f"Bearer sweep-{sc.seed}"
    limit = sc.duration + 180  # testbed start/stop and the connect timeouts, with room to spare
    proc = subprocess.run(
        cmd, env=env, cwd=runs, capture_output=True, text=True, timeout=limit, check=False
    )
    rundir = runs / run_id
    if not (rundir / "requests").is_dir():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise RuntimeError(f"run failed (exit {proc.returncode}): {' | '.join(tail)}")
    return rundir


def record_here(seed: int, runs: Path) -> int:
    """The child of record(): `albprobe run -c <scenario>.toml --no-analyze --fault ...`, through
    the runner's API so that the testbed settings with no config key (the listener, a slow
    app boot, the check timeout) reach the testbed too."""
    from albprobe.runner import RunOptions, execute, parse_fault_schedule
    from core.config import load_config
    from testbed.config import FAULTS

    sc = generate(seed)
    cfg = load_config(runs / f"sweep-{seed}.toml")
    opts = RunOptions(
        config=cfg,
        shape=sc.shape,
        faults=parse_fault_schedule(list(sc.faults), FAULTS),
        runs_root=runs,
        run_id=f"sweep-{seed}",
        testbed_overrides=sc.testbed_overrides(),
    )
    result = execute(opts, console_log=lambda line: print(line, flush=True))
    print(f"status {result.status} {result.status_reason or ''}")
    return 0


def judge(sc: Scenario, rundir: Path, seconds: float) -> Outcome:
    from analysis.pipeline import analyze_run

    v = analyze_run(rundir, write=False).verdict
    return Outcome(
        sc,
        v.at_fault,
        v.top.id if v.top else None,
        [(c.id, c.strength) for c in v.causes],
        v.headline,
        seconds,
    )


def report(outcomes: list[Outcome], wall: float) -> str:
    n = len(outcomes)
    lines = []
    af = sum(o.at_fault_ok for o in outcomes)
    top = sum(o.top_ok for o in outcomes)
    both = sum(o.ok for o in outcomes)
    lines.append(
        f"{n} scenarios in {wall / 60:.1f} min: at_fault {af}/{n} ({100 * af / max(n, 1):.0f}%), "
        f"top cause {top}/{n} ({100 * top / max(n, 1):.0f}%), both {both}/{n}"
    )
    lines.append("")
    lines.append("| injected kind | expected (at_fault/top) | right | accuracy |")
    lines.append("|---|---|---|---|")
    for kind, group in _grouped(outcomes, lambda o: o.scenario.fault):
        want = "{}/{}".format(*group[0].scenario.expected).replace("None", "-")
        lines.append(f"| {kind} | {want} | {_share(group)} |")
    lines.append("")
    lines.append("| expected cause | kinds | right | accuracy |")
    lines.append("|---|---|---|---|")
    for cause, group in _grouped(outcomes, lambda o: o.scenario.expected[1] or "(none)"):
        kinds = ", ".join(sorted({o.scenario.fault for o in group}))
        lines.append(f"| {cause} | {kinds} | {_share(group)} |")
    conf: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        got = "error" if o.error else f"{o.at_fault}/{o.top or '-'}"
        conf[(o.scenario.fault, got)] += 1
    cols = sorted({g for _f, g in conf})
    rows = sorted({f for f, _g in conf})
    w = max(len(c) for c in cols + ["injected"]) + 2
    lines.append("")
    lines.append("| injected \\ verdict (at_fault/top) | " + " | ".join(cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for r in rows:
        lines.append(f"| {r} | " + " | ".join(str(conf[(r, c)] or "") for c in cols) + " |")
    bad = [o for o in outcomes if not o.ok]
    lines.append("")
    lines.append("failing seeds: " + (" ".join(str(o.scenario.seed) for o in bad) or "none"))
    for o in bad:
        lines.append(f"  {o.scenario.describe()}")
        lines.append(
            f"    want {o.scenario.expected}, got {o.at_fault}/{o.top} {o.causes}"
            + (f" ERROR {o.error}" if o.error else "")
        )
        lines.append(f"    {o.headline[:300]}")
    del w
    return "\n".join(lines)


def _grouped(outcomes: list[Outcome], key) -> list[tuple[str, list[Outcome]]]:
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(key(o), []).append(o)
    return sorted(groups.items())


def _share(group: list[Outcome]) -> str:
    right = sum(o.ok for o in group)
    return f"{right}/{len(group)} | {100 * right / len(group):.0f} %"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=int(os.environ.get("SWEEP_N", "60")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SWEEP_SEED", "1000")))
    ap.add_argument("--only", type=int, nargs="*", help="run just these seeds")
    ap.add_argument("--record", type=int, help=argparse.SUPPRESS)  # record()'s child
    ap.add_argument("--keep", type=Path, help="keep the run directories here")
    ap.add_argument(
        "--reanalyze", type=Path, help="judge the runs kept in this folder again (no load)"
    )
    a = ap.parse_args(argv)
    if a.record is not None:
        return record_here(a.record, a.keep)
    seeds = a.only or list(range(a.seed, a.seed + a.n))
    outcomes: list[Outcome] = []
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="albsweep-") as tmp:
        runs = a.reanalyze or a.keep or Path(tmp)
        if a.reanalyze:
            seeds = sorted(
                json.loads(p.read_text())["seed"] for p in a.reanalyze.glob("sweep-*.json")
            )
        for seed in seeds:
            sc = generate(seed)
            t0 = time.monotonic()
            try:
                rundir = runs / f"sweep-{seed}" if a.reanalyze else record(sc, runs)
                o = judge(sc, rundir, time.monotonic() - t0)
            except Exception as exc:  # a failed run is a sweep result, not a crash
                o = Outcome(sc, "error", None, [], "", time.monotonic() - t0, error=str(exc))
            outcomes.append(o)
            mark = "ok " if o.ok else "BAD"
            print(
                f"{mark} {o.seconds:5.0f}s {sc.describe()} -> {o.at_fault}/{o.top}"
                + (f" ({o.error})" if o.error else ""),
                flush=True,
            )
    print()
    print(report(outcomes, time.monotonic() - t_all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
