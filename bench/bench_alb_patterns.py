"""ALB-log diagnosis sweep: seeded incident windows (fixtures/alb_incidents.py), one per pattern
and seed, each written as ALB log objects and diagnosed by `albprobe analyze --alb-logs`'s own
code path (analysis.pipeline.analyze_alb_logs): the named cause vs the drawn pattern.

    python bench/bench_alb_patterns.py                 # 20 seeds per pattern from seed 100
    python bench/bench_alb_patterns.py --n 40 --seed 7 --readme   # and rewrite bench/README.md's table
    python bench/bench_alb_patterns.py --only target-crash:103    # one window, with its causes

Pure analysis (no network, no testbed): a few minutes for 180 windows. Target: >= 95 % of the
windows of every pattern diagnosed as their cause (a healthy window: no cause), the time window of
the diagnosis (what `albprobe replay` injects) overlapping the drawn one, and its target the drawn
target. Prints the accuracy per pattern, the confusion table and the misses; exit 1 below target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from analysis import pipeline  # noqa: E402
from fixtures import alb_incidents  # noqa: E402

TARGET = 0.95
README = REPO / "bench" / "README.md"
BEGIN, END = "<!-- alb-patterns:begin -->", "<!-- alb-patterns:end -->"
NONE = "(none)"


@dataclass
class Outcome:
    pattern: str
    seed: int
    expected: str | None
    got: str | None
    window_ok: bool
    causes: list[tuple[str, float]]
    headline: str

    @property
    def ok(self) -> bool:
        return self.got == self.expected and self.window_ok


def judge(pattern: str, seed: int, tmp: Path) -> Outcome:
    inc = alb_incidents.draw(pattern, seed)
    folder = tmp / f"{pattern}-{seed}"
    alb_incidents.write(folder, inc)
    v = pipeline.analyze_alb_logs(str(folder), write=False).verdict
    top = v.top if v.at_fault != "none" else None
    window_ok = True
    if top is not None and inc.expected is not None and top.id == inc.expected:
        w = top.window
        window_ok = (
            w is not None
            and inc.first_ts is not None
            and inc.last_ts is not None
            and w.first_ts <= inc.last_ts + 2
            and w.last_ts >= inc.first_ts - 2
            and (inc.target is None or w.target == inc.target)
        )
    return Outcome(
        pattern,
        seed,
        inc.expected,
        top.id if top else None,
        window_ok,
        [(c.id, c.strength) for c in v.causes],
        v.headline,
    )


def table(outcomes: list[Outcome]) -> str:
    pats = list(alb_incidents.PATTERNS)
    got_ids = sorted({o.got or NONE for o in outcomes})
    lines = [
        "| pattern (expected cause) | windows | right | accuracy | strength | "
        + " | ".join(got_ids)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(got_ids),
    ]
    for p in pats:
        mine = [o for o in outcomes if o.pattern == p]
        if not mine:
            continue
        c = Counter(o.got or NONE for o in mine)
        right = sum(o.ok for o in mine)
        top = [o.causes[0][1] for o in mine if o.got and o.causes]
        strength = f"{min(top):.2f}-{max(top):.2f}" if top else "-"
        lines.append(
            f"| {p} ({alb_incidents.PATTERNS[p] or NONE}) | {len(mine)} | {right} | "
            f"{100 * right / len(mine):.0f} % | {strength} | "
            + " | ".join(str(c.get(g, "")) for g in got_ids)
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20, help="seeds per pattern")
    ap.add_argument("--seed", type=int, default=100, help="first seed")
    ap.add_argument("--only", help="pattern:seed, one window")
    ap.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = ap.parse_args()
    runs = (
        [(args.only.split(":")[0], int(args.only.split(":")[1]))]
        if args.only
        else [(p, s) for s in range(args.seed, args.seed + args.n) for p in alb_incidents.PATTERNS]
    )
    t0 = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="albprobe-bench-patterns-") as tmp:
        for p, s in runs:
            o = judge(p, s, Path(tmp))
            outcomes.append(o)
            if args.only or not o.ok:
                print(
                    f"{'ok  ' if o.ok else 'MISS'} {p}:{s} expected {o.expected} got {o.got} "
                    f"(window {'ok' if o.window_ok else 'WRONG'}) causes {o.causes}\n     {o.headline}"
                )
    secs = time.perf_counter() - t0
    text = table(outcomes)
    print(text)
    per = {
        p: sum(o.ok for o in outcomes if o.pattern == p)
        / max(1, sum(o.pattern == p for o in outcomes))
        for p in {o.pattern for o in outcomes}
    }
    worst = min(per.values())
    print(
        f"{len(outcomes)} windows in {secs:.0f} s; worst pattern {100 * worst:.0f} % (target {100 * TARGET:.0f} %)"
    )
    if args.readme and not args.only:
        body = README.read_text(encoding="utf-8")
        head, rest = body.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
        block = (
            f"{BEGIN}\n`python bench/bench_alb_patterns.py --n {args.n} --seed {args.seed}`: "
            f"{len(outcomes)} windows in {secs:.0f} s, worst pattern {100 * worst:.0f} %.\n"
            "Rows: the drawn pattern; columns: the cause the verdict named first (a right answer "
            "also needs the diagnosed window to overlap the drawn one and name its target).\n\n"
            f"{text}\n{END}"
        )
        README.write_text(head + block + tail, encoding="utf-8")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
