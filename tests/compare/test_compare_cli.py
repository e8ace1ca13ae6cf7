"""`albprobe compare` on synthetic run directories (fixtures/synth_compare.py): the judgement,
the refusals, bad input, the reports and the JUnit file. No network."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from albprobe.cli import main
from fixtures import synth_compare as sc


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synth-compare")
    return {
        "base": sc.write_run(root, "base", seed=1),
        "same": sc.write_run(root, "same", seed=2),
        "slower": sc.write_run(root, "slower", seed=3, latency_scale={"slow": 1.3}),
        "failing": sc.write_run(root, "failing", seed=4, fail_step={"write": 0.03}),
    }


def compare(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["compare", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_same_distribution_passes_with_exit_0_and_reports(runs, capsys, tmp_path, junit_schema):
    out = tmp_path / "cmp"
    junit = tmp_path / "junit.xml"
    rc, stdout, err = compare(
        capsys, str(runs["base"]), str(runs["same"]), "-o", str(out), "--junit", str(junit)
    )
    assert rc == 0, err
    assert "compare: pass" in stdout
    doc = json.loads((out / "compare.json").read_text())
    assert doc["overall"]["result"] == "pass"
    assert not [f for f in doc["figures"] if f["judgement"] == "regressed"]
    html = (out / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "http://" not in html.replace(
        "http://127.0.0.1:1", ""
    )
    junit_schema.validate(str(junit))
    assert 'failures="0"' in junit.read_text()


def test_a_slower_endpoint_fails_on_that_endpoint_only(runs, capsys, tmp_path, junit_schema):
    junit = tmp_path / "j.xml"
    rc, stdout, err = compare(
        capsys,
        str(runs["base"]),
        str(runs["slower"]),
        "-o",
        str(tmp_path / "c"),
        "--junit",
        str(junit),
        "--json",
    )
    assert rc == 1 and "gate breached: judgement" in err
    doc = json.loads(stdout)
    regressed = {(f["scope"], f["name"]) for f in doc["figures"] if f["judgement"] == "regressed"}
    assert ("slow", "p50") in regressed
    assert {scope for scope, _ in regressed} <= {"slow", "(all)"}
    junit_schema.validate(str(junit))
    assert "<failure" in junit.read_text()


def test_a_failure_step_fails_on_the_proxy_5xx_rate_and_fail_on_gates(runs, capsys, tmp_path):
    rc, stdout, _ = compare(
        capsys,
        str(runs["base"]),
        str(runs["failing"]),
        "-o",
        str(tmp_path / "c"),
        "--json",
        "--fail-on",
        "proxy_5xx_rate_delta>0.005",
        "--fail-on",
        "p99_regression>50%",
    )
    doc = json.loads(stdout)
    assert rc == 1
    j = {(f["scope"], f["name"]): f["judgement"] for f in doc["figures"]}
    assert j[("write", "proxy_5xx_rate")] == "regressed"
    assert j[("fast", "proxy_5xx_rate")] != "regressed"
    gates = {g["name"]: g["passed"] for g in doc["gates"]}
    assert gates == {
        "judgement": False,
        "proxy_5xx_rate_delta>0.005": False,
        "p99_regression>50%": True,
    }


def test_new_cors_failures_are_a_regression_on_their_own(runs, capsys, tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    new = tmp_path / "cors"
    shutil.copytree(runs["same"], new)
    part = new / "requests" / "part-00000.parquet"
    t = pq.read_table(part)
    # three app responses of `fast` now fail the browser's CORS check
    hit = pc.and_(
        pc.equal(t["endpoint"], "fast"),
        pc.less(pc.cumulative_sum(pc.cast(pc.equal(t["endpoint"], "fast"), "int64")), 4),
    )
    t = t.set_column(
        t.schema.get_field_index("cors_ok"), "cors_ok", pc.if_else(hit, False, t["cors_ok"])
    )
    t = t.set_column(
        t.schema.get_field_index("cors_step"),
        "cors_step",
        pc.if_else(hit, "allow-origin", t["cors_step"]),
    )
    pq.write_table(t, part)
    rc, stdout, _ = compare(
        capsys,
        str(runs["base"]),
        str(new),
        "-o",
        str(tmp_path / "c"),
        "--json",
        "--fail-on",
        "new_cors_failures>0",
    )
    doc = json.loads(stdout)
    assert rc == 1
    f = next(f for f in doc["figures"] if f["scope"] == "fast" and f["name"] == "new_cors_failures")
    assert f["judgement"] == "regressed" and f["effect"] == 3 and "allow-origin" in f["why"]
    assert not next(g for g in doc["gates"] if g["name"] == "new_cors_failures>0")["passed"]


def _edit_meta(src: Path, dst: Path, **changes) -> Path:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "run.json").read_text())
    meta.update(changes)
    (dst / "run.json").write_text(json.dumps(meta))
    return dst


def test_incomparable_runs_are_refused_naming_the_difference(runs, capsys, tmp_path):
    other = _edit_meta(runs["same"], tmp_path / "other", origin="https://evil.example")
    rc, _, err = compare(capsys, str(runs["base"]), str(other))
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("albprobe: error: the runs are not comparable")
    assert (
        "origin is 'https://hakwonplus.com' in the baseline, 'https://evil.example' in the new run"
        in err
    )
    rc, stdout, _ = compare(
        capsys, str(runs["base"]), str(other), "--force", "--json", "-o", str(tmp_path / "c")
    )
    assert rc == 0
    assert any("origin is" in d for d in json.loads(stdout)["differences"])


def test_shape_and_endpoint_differences_are_each_named(runs, capsys, tmp_path):
    meta = json.loads((runs["same"] / "run.json").read_text())
    meta["shape"]["params"]["users"] = 50
    meta["config"]["endpoints"][0]["method"] = "PUT"
    other = _edit_meta(runs["same"], tmp_path / "o", shape=meta["shape"], config=meta["config"])
    rc, _, err = compare(capsys, str(runs["base"]), str(other))
    assert rc == 2
    assert "shape parameter users is 10 in the baseline, 50 in the new run" in err
    assert "endpoint fast is 'GET /api/fast' in the baseline, 'PUT /api/fast' in the new run" in err


@pytest.mark.parametrize(
    "case", ["missing", "no-run-json", "partial", "no-common-endpoint", "empty"]
)
def test_bad_input_is_one_line_and_exit_2(case, runs, capsys, tmp_path):
    base = str(runs["base"])
    if case == "missing":
        new = tmp_path / "nope"
    elif case == "no-run-json":
        new = tmp_path / "bare"
        new.mkdir()
    elif case == "partial":
        new = _edit_meta(runs["same"], tmp_path / "p", status="partial", status_reason="Ctrl-C")
    elif case == "empty":
        new = _edit_meta(runs["same"], tmp_path / "e")
        shutil.rmtree(new / "requests")
    else:
        new = tmp_path / "other"
        sc.write_run(tmp_path, "other", seed=9, endpoints={"elsewhere": 30.0})
    rc, stdout, err = compare(
        capsys,
        base,
        str(new),
        "--force" if case == "no-common-endpoint" else "--alpha",
        *([] if case == "no-common-endpoint" else ["0.05"]),
    )
    assert rc == 2, (stdout, err)
    assert err.count("\n") == 1 and err.startswith("albprobe: error: "), err
    assert "Traceback" not in err
    expect = {
        "missing": "does not exist",
        "no-run-json": "no run.json",
        "partial": "is a partial run (Ctrl-C)",
        "no-common-endpoint": "no endpoint in common",
        "empty": "requests table is empty or missing",
    }[case]
    assert expect in err


def test_a_bad_threshold_is_exit_2(runs, capsys):
    rc, _, err = compare(
        capsys, str(runs["base"]), str(runs["same"]), "--fail-on", "p99_regresion>10%"
    )
    assert rc == 2 and "cannot read this threshold" in err and "p99_regression" in err


def test_tune_sessions_side_by_side(capsys, tmp_path):
    sample = Path(__file__).resolve().parents[2] / "docs" / "sample-tune" / "tune.json"
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    (a / "tune.json").write_text(sample.read_text())
    doc = json.loads(sample.read_text())
    doc["before"]["knee"]["rps"] *= 0.7
    (b / "tune.json").write_text(json.dumps(doc))
    rc, stdout, err = compare(capsys, str(a), str(b), "--json")
    assert rc == 1, err
    out = json.loads(stdout)
    rows = {r["figure"]: r for r in out["rows"]}
    assert rows["knee req/s"]["change"] == pytest.approx(-0.3)
    assert rows["recommended workers"]["baseline"] == rows["recommended workers"]["new"] == 2
    assert "USL kappa (coherency)" in rows and out["result"] == "fail"
    rc, _, _ = compare(capsys, str(a), str(a), "--json")
    assert rc == 0


def test_analyze_writes_one_junit_case_per_gate(capsys, tmp_path, junit_schema):
    from fixtures import synth

    run = synth.write(tmp_path, "healthy", seconds=20, rps=20)
    junit = tmp_path / "a.xml"
    rc = main(
        [
            "analyze",
            str(run),
            "--fail-on",
            "p99>1",
            "--fail-on",
            "5xx_rate>0.5",
            "--junit",
            str(junit),
        ]
    )
    capsys.readouterr()
    assert rc == 1
    junit_schema.validate(str(junit))
    text = junit.read_text()
    assert 'tests="2"' in text and 'failures="1"' in text
    assert 'name="p99&gt;1"' in text and "breached" in text
    plain = tmp_path / "b.xml"
    assert main(["analyze", str(run), "--junit", str(plain)]) == 0
    capsys.readouterr()
    junit_schema.validate(str(plain))
    assert 'name="verdict"' in plain.read_text() and 'failures="0"' in plain.read_text()


def test_dropped_iterations_and_targets_are_compared(tmp_path):
    from analysis.compare import compare_runs

    a = sc.write_run(tmp_path, "a", seed=1, targets=2, dropped_share=0.01)
    # each testbed run listens on a port of its own: its targets are matched by their addresses
    b = sc.write_run(tmp_path, "b", seed=2, targets=2, target_port=13843, dropped_share=0.08)
    cmp = compare_runs(a, b, with_verdicts=False)
    dropped = next(f for f in cmp.figures if f.name == "dropped_rate")
    assert dropped.judgement == "regressed" and dropped.effect > 0.05
    assert cmp.throughput["new"]["dropped"] > cmp.throughput["baseline"]["dropped"]
    assert cmp.throughput["new"]["intended_iterations_per_s"] == pytest.approx(50, rel=0.05)
    assert [r["target"] for r in cmp.targets] == ["127.0.0.2", "127.0.0.3"]
    assert all(0.4 < r["share_new"] < 0.6 and r["p95_ms_baseline"] > 0 for r in cmp.targets)
    assert all(0.4 < r["share_baseline"] < 0.6 and r["p95_ms_new"] > 0 for r in cmp.targets)
    # on an 80-column terminal the target's name stays whole, its figures beside it
    from rich.console import Console

    from analysis.reports.compare_terminal import print_comparison

    con = Console(width=80, record=True)
    print_comparison(cmp, console=con)
    lines = con.export_text().splitlines()
    for r in cmp.targets:
        (line,) = [ln for ln in lines if f" {r['target']} " in ln]
        p95 = f"{r['p95_ms_baseline']:.0f} -> {r['p95_ms_new']:.0f} ms"
        assert p95 in line and f"{100 * r['share_new']:.0f} %" in line, line
    # a URL target keeps its targets' ports: there they are part of the address
    for run in (a, b):
        m = json.loads((run / "run.json").read_text())
        m["target"] = {"kind": "url", "url": "https://api.example.com"}
        (run / "run.json").write_text(json.dumps(m))
    names = [r["target"] for r in compare_runs(a, b, with_verdicts=False).targets]
    assert names == ["127.0.0.2:13843", "127.0.0.2:8000", "127.0.0.3:13843", "127.0.0.3:8000"]


def test_run_refuses_a_bad_baseline_or_gate_before_any_load(capsys, tmp_path, runs):
    # nothing starts: these are refused while reading the command line
    cases = [
        (["--baseline", str(tmp_path / "nope")], "does not exist"),
        (["--fail-on", "p99_regression>10%"], "a comparison threshold needs --baseline"),
        (
            ["--baseline", str(runs["base"]), "--fail-on", "p99_regresion>1"],
            "cannot read this threshold",
        ),
        # a run compare would refuse: other endpoints and shape parameters than the baseline's
        (
            ["--baseline", str(runs["base"])],
            "this run would not be comparable with it: endpoint write",
        ),
    ]
    for args, expect in cases:
        rc = main(["run", "--runs-dir", str(tmp_path / "runs"), "--duration", "1s", *args])
        err = capsys.readouterr().err
        assert rc == 2 and expect in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_force_compares_a_partial_run_and_says_so(runs, capsys, tmp_path):
    partial = _edit_meta(runs["same"], tmp_path / "p", status="partial", status_reason="SIGTERM")
    rc, stdout, _ = compare(
        capsys, str(runs["base"]), str(partial), "--force", "--json", "-o", str(tmp_path / "c")
    )
    assert rc == 0
    assert any("is a partial run (SIGTERM)" in d for d in json.loads(stdout)["differences"])


def test_two_large_unanalysed_runs_are_analysed_side_by_side(runs, tmp_path, monkeypatch):
    """Neither run analysed and both large: the baseline is read and analysed in a child process
    while this one reads and analyses the new run; the baseline's data and both verdicts are the
    ones reading each in turn gives."""
    import numpy as np

    from analysis.compare import data, verdicts

    a, b = (shutil.copytree(runs[k], tmp_path / k) for k in ("base", "failing"))
    for p in (a, b):
        shutil.rmtree(p / "report", ignore_errors=True)
    alone = verdicts.run_verdict(a), verdicts.run_verdict(b)
    monkeypatch.setattr(verdicts, "PARALLEL_ROWS", 1)
    both = verdicts.BothVerdicts(a, b, rows=10)
    assert both._child is not None  # started at once, before anything else reads the runs
    pid = both._child.pid
    got, here = both.base_data(), data.load(a)
    assert got.path == here.path and got.endpoints == here.endpoints and got.requests > 0
    for scope, c in here.counts.items():
        assert np.array_equal(got.counts[scope].n, c.n)
        assert got.latency[scope].quantiles == here.latency[scope].quantiles
        assert np.array_equal(got.latency[scope].ms, here.latency[scope].ms)
    assert got.timeline == here.timeline and got.cors_failures == here.cors_failures
    assert both.get() == alone
    assert both._child is None  # ended and reaped
    import os

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # small runs: no child (starting one costs more than it saves)
    assert verdicts.BothVerdicts(a, b, rows=0)._child is None


def test_a_side_by_side_child_that_dies_is_replaced_by_reading_here(runs, tmp_path, monkeypatch):
    """The baseline's child killed (as the OOM killer would): the comparison reads and analyses
    the baseline itself, with the same results."""
    import signal

    from analysis.compare import data, verdicts

    a, b = (shutil.copytree(runs[k], tmp_path / k) for k in ("base", "failing"))
    for p in (a, b):
        shutil.rmtree(p / "report", ignore_errors=True)
    monkeypatch.setattr(verdicts, "PARALLEL_ROWS", 1)
    both = verdicts.BothVerdicts(a, b, rows=10)
    os.kill(both._child.pid, signal.SIGKILL)
    got = both.base_data()
    assert got.requests == data.load(a).requests > 0
    assert both._child is None  # reaped
    assert both.get() == (verdicts.run_verdict(a), verdicts.run_verdict(b))


def test_a_baseline_runs_failure_names_the_comparison_not_fail_on():
    """`albprobe run --baseline` fails on the comparison's judgement with no --fail-on given: the
    error says so, and names the user's own --fail-on thresholds apart."""
    from albprobe.commands.run import _breach_message

    base = Path("runs/release-41")
    assert _breach_message(["compare judgement"], base) == (
        "the comparison with the baseline runs/release-41 failed (overall: fail)"
    )
    both = _breach_message(
        ["5xx_rate>0.01", "compare judgement", "compare p99_regression>10%"], base
    )
    assert both == (
        "the comparison with the baseline runs/release-41 failed (overall: fail); "
        "--fail-on breached: 5xx_rate>0.01, compare p99_regression>10%"
    )
    assert _breach_message(["p99>800"], None) == "--fail-on breached: p99>800"


def test_run_with_the_baselines_own_settings_is_not_refused(tmp_path):
    """The check before the load compares what run.json will record: the baseline's own settings
    pass (as JSON, the way run.json holds them), one changed option is named."""
    from albprobe.commands.run import refuse_incomparable
    from albprobe.runner import planned_record
    from core.config import load_config
    from core.errors import ConfigError

    cfg = load_config(None)  # the testbed's defaults
    base = json.loads(
        json.dumps(
            planned_record(cfg, "users") | {"target": {"kind": "testbed", "url": "x"}}, default=str
        )
    )
    refuse_incomparable(tmp_path, base, cfg, "users")  # no error
    with pytest.raises(
        ConfigError, match="shape is 'users' in the baseline, 'step' in the new run"
    ):
        refuse_incomparable(tmp_path, base, cfg, "step")
    refuse_incomparable(tmp_path, {"shape": {"name": "step"}}, cfg, "users")  # no config: later
