"""`albprobe compare` on real testbed runs (HAProxy, gunicorn, Django): one module-scoped set of
short runs that every test reads.

Latency comes from the testbed's sleeping endpoint (`?ms=`), so the machine's own load adds
little to it. Each of the 2 gthread workers has a thread for every one of the 32 users (a user's
keep-alive connection stays on one worker), so the endpoints never queue behind each other.
The runs follow each other on a shared machine: a neighbour's load that starts between two runs
is a real difference between them (not noise within a run, which the block tests absorb), so the
comparisons here use a minimum latency effect of +25 %, which a busy 2-core box still meets; the
raised endpoint doubles its latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CONFIG = """
[load]
think_time = 0.0
[capacity]
worker_class = "gthread"
workers = 2
threads = 32
[[endpoints]]
name = "steady"
path = "/api/slow?ms=300"
[[endpoints]]
name = "slow"
path = "/api/slow?ms={slow_ms}"
"""


MIN_EFFECT = ("--min-latency-effect", "0.25")


class Runs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs = root / "runs"
        self.results: dict[str, subprocess.CompletedProcess] = {}

    def albprobe(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
        return subprocess.run(
            [sys.executable, "-m", "albprobe", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(self.root),
            env=env,
        )

    def run(self, run_id: str, slow_ms: int, *extra: str) -> subprocess.CompletedProcess:
        cfg = self.root / f"{run_id}.toml"
        cfg.write_text(CONFIG.format(slow_ms=slow_ms))
        r = self.albprobe(
            "run", "--runs-dir", str(self.runs), "--config", str(cfg), "--shape", "users",
            "--users", "32", "--duration", "8s", "--run-id", run_id, *extra,
        )  # fmt: skip
        self.results[run_id] = r
        return r


@pytest.fixture(scope="module")
def tb(tmp_path_factory) -> Runs:
    runs = Runs(tmp_path_factory.mktemp("compare-testbed"))
    for run_id, slow_ms in (("base", 600), ("same", 600), ("raised", 1200)):
        r = runs.run(run_id, slow_ms)
        assert r.returncode == 0, r.stderr[-2000:]
    # the proxy's 502s: a target-down fault mid-run, compared at once by `run --baseline`
    runs.run(
        "down", 600, "--fault", "target-down@2s-4s", "--baseline", str(runs.runs / "base"),
        "--fail-on", "proxy_5xx_rate_delta>0.005", "--junit", str(runs.root / "down.xml"),
    )  # fmt: skip
    return runs


def compare_json(tb: Runs, new: str, *extra: str) -> tuple[int, dict]:
    out = tb.root / f"cmp-{new}"
    r = tb.albprobe(
        "compare", str(tb.runs / "base"), str(tb.runs / new), "-o", str(out), *MIN_EFFECT, *extra
    )
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads((out / "compare.json").read_text())


def regressed(doc: dict) -> set[tuple[str, str]]:
    return {(f["scope"], f["name"]) for f in doc["figures"] if f["judgement"] == "regressed"}


def test_two_runs_of_one_setting_pass(tb, junit_schema):
    rc, doc = compare_json(tb, "same", "--junit", str(tb.root / "same.xml"))
    assert doc["overall"]["result"] == "pass", doc["overall"]
    assert rc == 0 and not regressed(doc)
    # enough data to judge: the median of both endpoints was tested, not left inconclusive
    tested = {(f["scope"], f["name"]) for f in doc["figures"] if f["p_adj"] is not None}
    assert {("steady", "p50"), ("slow", "p50"), ("(all)", "proxy_5xx_rate")} <= tested
    junit_schema.validate(str(tb.root / "same.xml"))


def test_a_slower_endpoint_fails_on_that_endpoint_only(tb):
    rc, doc = compare_json(tb, "raised")
    assert rc == 1 and doc["overall"]["result"] == "fail"
    hits = regressed(doc)
    assert ("slow", "p50") in hits
    assert not [h for h in hits if h[0] == "steady"], hits
    slow_p50 = next(f for f in doc["figures"] if f["scope"] == "slow" and f["name"] == "p50")
    assert slow_p50["effect"] > 0.5  # 600 ms -> 1200 ms of sleep
    assert any("path '/api/slow?ms=600' -> '/api/slow?ms=1200'" in n for n in doc["notes"])


def test_proxy_502s_fail_on_the_proxy_5xx_rate_and_name_the_new_cause(tb, junit_schema):
    r = tb.results["down"]
    assert r.returncode == 1, (r.stdout[-3000:], r.stderr[-2000:])
    assert "--fail-on breached" in r.stderr and "proxy_5xx_rate_delta>0.005" in r.stderr
    assert "the comparison with the baseline" in r.stderr and "failed (overall: fail)" in r.stderr
    doc = json.loads((tb.runs / "down" / "compare" / "compare.json").read_text())
    assert ("(all)", "proxy_5xx_rate") in regressed(doc)
    assert doc["verdicts"]["new"]["at_fault"] == "proxy"
    assert any(c.startswith("new cause: target-down") for c in doc["changes"]), doc["changes"]
    assert "new cause: target-down" in r.stdout
    junit = tb.root / "down.xml"
    junit_schema.validate(str(junit))
    text = junit.read_text()
    assert (
        'name="compare: judgement"' in text
        and 'name="compare: proxy_5xx_rate_delta&gt;0.005"' in text
    )
    assert "<failure" in text


def test_runs_of_other_endpoints_are_refused(tb, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.format(slow_ms=600).replace('name = "slow"', 'name = "slower"'))
    r = tb.albprobe(
        "run", "--runs-dir", str(tmp_path), "--config", str(other), "--shape", "users",
        "--users", "32", "--duration", "3s", "--run-id", "other", "--no-analyze",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    c = tb.albprobe("compare", str(tb.runs / "base"), str(tmp_path / "other"))
    assert c.returncode == 2
    assert c.stderr.count("\n") == 1
    assert "endpoints differ: only the baseline has slow; only the new run has slower" in c.stderr
