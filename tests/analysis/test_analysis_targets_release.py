"""Several targets, deploys, worker kills and the wrong-scheme redirect: the per-target split and
the deploy / worker-kill / worker-recycle / http-redirect causes, on synthetic run directories in
the recorded format of CONTRACT10 (fixtures/synth_targets.py) and on ALB logs."""

from __future__ import annotations

import pytest
from rich.console import Console

from analysis.dataset import open_run
from analysis.pipeline import analyze_alb_logs, analyze_run
from analysis.reports.terminal import print_summary
from analysis.targets import breakdown, target_of_server
from fixtures import synth, synth_targets

T1, T2 = synth_targets.TARGETS


def verdict_of(tmp_path, mode):
    return analyze_run(synth_targets.write(tmp_path, mode), write=False).verdict


def ids(v) -> list[str]:
    return [c.id for c in v.causes]


def test_server_names_map_to_the_listed_targets():
    targets = [T1, T2]
    assert target_of_server("target", targets) == T1
    assert target_of_server("target-2", targets) == T2
    assert target_of_server("target-2-failopen", targets) == T2
    assert target_of_server("<NOSRV>", targets) is None
    # an old run lists no targets: the server's name stands for its target
    assert target_of_server("target-failopen", []) == "target"


def test_one_bad_target_of_two_is_target_down_with_the_split(tmp_path):
    v = verdict_of(tmp_path, "one-target-bad")
    assert v.at_fault == "proxy" and ids(v)[0] == "target-down"
    split = v.figures.target_breakdown
    assert split["source"] == "proxy log"
    per = {t["target"]: t for t in split["targets"]}
    assert per[T2]["failed"] == split["targets"][1]["failed"] > 0 and per[T1]["failed"] == 0
    assert per[T2]["unhealthy_samples"] > 0 and per[T1]["unhealthy_samples"] == 0
    assert per[T1]["answered"] > per[T2]["answered"] > 0
    assert any(e.startswith(f"1 of 2 targets: {T2} (") for e in v.causes[0].evidence)
    console = Console(record=True, width=160)
    print_summary(v, console=console)
    table = console.export_text()
    assert "targets (proxy 5xx from the proxy log)" in table
    assert f"{T2} │" in table and f"{per[T2]['failed']} │" in table


def test_the_correct_deploy_is_the_control_no_failure_no_cause(tmp_path):
    v = verdict_of(tmp_path, "deploy")
    assert v.at_fault == "none" and v.causes == []


@pytest.mark.parametrize(
    ("mode", "pattern"),
    [
        ("deploy-stop-first", "stopped before it was deregistered"),
        ("deploy-short-drain", "drain (deregistration_delay 1 s) was shorter"),
        ("deploy-early-register", "registered before the app was ready"),
    ],
)
def test_broken_deploys_are_the_deploy_cause_with_their_pattern(tmp_path, mode, pattern):
    v = verdict_of(tmp_path, mode)
    assert v.at_fault == "proxy" and ids(v)[0] == "deploy", (ids(v), v.headline)
    deploy = v.causes[0]
    assert any(pattern in e for e in deploy.evidence), deploy.evidence
    assert "inside a target's deregistration, stop or registration window" in deploy.evidence[0]


def test_an_oom_worker_kill_is_worker_kill_not_capacity(tmp_path):
    v = verdict_of(tmp_path, "worker-kill")
    assert ids(v)[0] == "worker-kill", ids(v)
    assert "capacity" not in ids(v)
    ev = " ".join(v.causes[0].evidence)
    assert "was sent SIGKILL! Perhaps out of memory?" in ev and "2 of 2 proxy failures" in ev
    assert "dmesg" in v.causes[0].fix


def test_recycles_with_failures_next_to_them_are_worker_recycle(tmp_path):
    v = verdict_of(tmp_path, "worker-recycle")
    assert ids(v)[0] == "worker-recycle", ids(v)


def test_redirected_preflights_are_http_redirect_with_the_https_fix(tmp_path):
    v = verdict_of(tmp_path, "http-redirect")
    assert v.at_fault == "proxy" and ids(v) == ["http-redirect"]
    cause = v.causes[0]
    assert "Redirect is not allowed for a preflight request." in cause.evidence[0]
    assert "https://" in cause.fix
    assert "redirect to HTTPS" in v.headline and "no request reached the app" in v.headline


def test_a_single_target_run_has_no_one_of_n_pattern(tmp_path):
    path = synth.write(tmp_path, "target-down")
    ds = open_run(path)
    try:
        split = breakdown(ds.con, [])
    finally:
        ds.close()
    assert split.n == 1 and split.pattern() is None
    assert split.targets[0].failed > 0  # the old server name stands for the one target


def test_alb_logs_split_the_failures_by_each_lines_target(tmp_path):
    synth.write_alb_logs(tmp_path / "logs", 3000, keepalive_every=500)
    v = analyze_alb_logs(str(tmp_path / "logs"), write=False).verdict
    split = v.figures.target_breakdown
    assert split["source"] == "ALB log"
    per = {t["target"]: t for t in split["targets"]}
    assert per["10.0.2.11:8000"]["failed"] == 6 and per["10.0.1.10:8000"]["failed"] == 0
    assert split["one_of_n"].startswith("1 of 2 targets: 10.0.2.11:8000 (6 of 6")
    assert any(e == split["one_of_n"] for c in v.causes for e in c.evidence)


def test_the_apps_own_500s_on_every_target_do_not_bury_the_one_failing_target(tmp_path):
    """A busy API's own 500s (Django answered, the ALB passed them on: target status 500) come
    from every target; only the ALB's own 502s (target status '-') say which target it could not
    use. 6 keep-alive 502s on one target stay "1 of 2 targets" beside 60 app 500s spread over
    both (counted as proxy 5xx, the top target held 36 of 66 and no pattern was found)."""
    lines = list(synth.alb_lines(3000, keepalive_every=500))
    for i in range(0, len(lines), 50):  # every 50th line: the app's 500, passed through
        assert " 200 200 " in lines[i]
        lines[i] = lines[i].replace(" 200 200 ", " 500 500 ").replace('"200" "-"', '"500" "-"')
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    v = analyze_alb_logs(str(logs), write=False).verdict
    split = v.figures.target_breakdown
    per = {t["target"]: t["failed"] for t in split["targets"]}
    assert per == {"10.0.2.11:8000": 6, "10.0.1.10:8000": 0}
    assert split["one_of_n"].startswith("1 of 2 targets: 10.0.2.11:8000 (6 of 6")
    assert v.figures.alb_target_5xx == 60  # the app's 500s are still counted, as the target's


def test_the_apps_own_500s_through_haproxy_are_not_the_proxys(tmp_path):
    """The same on the testbed's proxy log: a 500 that gunicorn returned through HAProxy ends
    normally (termination state '----'), on every server; only the sessions HAProxy ended itself
    are the proxy's 5xx of a target."""
    path = synth_targets.write(tmp_path, "one-target-bad")
    log = path / "logs" / "haproxy-1.log"
    lines = log.read_text(encoding="utf-8").splitlines()
    ok = [i for i, ln in enumerate(lines) if " 200 230 - - ---- " in ln]
    for i in ok[::10]:  # every 10th normal answer on either target: the app's 500
        lines[i] = lines[i].replace(" 200 230 - - ---- ", " 500 230 - - ---- ")
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    v = analyze_run(path, write=False).verdict
    per = {t["target"]: t["failed"] for t in v.figures.target_breakdown["targets"]}
    assert per[T1] == 0 and per[T2] > 0
    assert ids(v)[0] == "target-down"
    assert any(e.startswith(f"1 of 2 targets: {T2} (") for e in v.causes[0].evidence)
