"""Diagnosis from the ALB access log alone: one seeded window per incident pattern
(fixtures/alb_incidents.py), each diagnosed through `albprobe analyze --alb-logs`'s code path,
plus the incident of issue 19 written by hand. The sweep over many seeds is a benchmark
(bench/bench_alb_patterns.py); these tests pin one window per pattern and the rules around it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from analysis import pipeline, verdict
from analysis.causes import registry
from analysis.reports import plots
from analysis.reports.terminal import print_summary
from fixtures import alb_incidents

SEEDS = {p: 7 + i for i, p in enumerate(alb_incidents.PATTERNS)}
CONTRADICTIONS = (("sporadic", "burst"), ("one at a time", "a burst of"))


def _analyze(tmp_path: Path, inc: alb_incidents.Incident) -> pipeline.Result:
    alb_incidents.write(tmp_path / "logs", inc)
    return pipeline.analyze_alb_logs(str(tmp_path / "logs"), write=False)


def _analyze_lines(tmp_path: Path, lines: list[str]) -> pipeline.Result:
    """Hand-written ALB log lines, as one log file, through `analyze --alb-logs`'s code path."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "incident.log").write_text("\n".join(lines) + "\n")
    return pipeline.analyze_alb_logs(str(tmp_path / "logs"), write=False)


def _agrees_with_itself(c: verdict.Cause) -> None:
    text = " ".join(c.evidence).lower()
    for a, b in CONTRADICTIONS:
        assert not (a in text and b in text), (c.id, c.evidence)


@pytest.mark.parametrize("pattern", list(alb_incidents.PATTERNS))
def test_each_pattern_is_diagnosed_from_the_log_alone(pattern, tmp_path):
    inc = alb_incidents.draw(pattern, SEEDS[pattern])
    v = _analyze(tmp_path, inc).verdict
    for c in v.causes:
        _agrees_with_itself(c)
    if inc.expected is None:
        assert v.at_fault == "none" and not v.causes, v.headline
        return
    assert v.at_fault == "proxy" and v.top is not None, v.headline
    assert v.top.id == inc.expected, [(c.id, c.strength) for c in v.causes]
    assert v.top.strength >= 0.5 and "undetermined" not in v.headline
    # the window replay injects: when it struck and where
    w = v.top.window
    assert w is not None and inc.first_ts is not None and inc.last_ts is not None
    assert w.first_ts <= inc.last_ts + 2 and w.last_ts >= inc.first_ts - 2, (w, inc)
    assert w.target == inc.target
    assert w.offset_s == pytest.approx(w.first_ts - v.figures.alb_first_ts, abs=0.01)


def test_the_issue_19_incident_is_a_target_crash(tmp_path):
    """Two targets; for 35 s one of them closes most of its requests mid-request (target time in
    the hundreds of ms, response time -1), then 5 s of ALB 503 with no target, then the other
    serves alone. It was 'cause undetermined' with a keep-alive race at 0.21 and 'sporadic' next
    to 'bursts'."""
    t0 = 1_790_000_000.0
    lines = []
    for i in range(1200):  # 10 requests a second for 120 s
        t = t0 + i * 0.1
        s = t - t0
        target, tpt, resp, elb, tsc = ("10.0.1.10:8000", "0.031", "0.000", 200, "200")
        if i % 2:
            target = "10.0.2.20:8000"
        if 40 <= s < 75 and i % 2 and i % 10 != 1:  # the dying target: 4 of 5 closed
            tpt, resp, elb, tsc = f"{0.2 + (i % 7) / 10:.3f}", "-1", 502, "-"
        elif 75 <= s < 80:  # no routable target
            target, tpt, resp, elb, tsc = "-", "-1", "-1", 503, "-"
        elif s >= 80 and i % 2:
            target = "10.0.1.10:8000"  # the other one serves alone
        rpt = "-1" if elb == 503 else "0.000"
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"
        lines.append(
            f"https {when} app/a/1 198.51.100.7:{2000 + i} {target} {rpt} {tpt} {resp} {elb} "
            f'{tsc} 300 800 "GET https://api.example.com:443/api/v1/me/ HTTP/1.1" "ua" '
            "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:r:1:targetgroup/t/1 "
            f'"Root=1-{i:08x}" "api.example.com" "-" 1 {when} "forward" "-" "-" "{target}" '
            f'"{tsc}" "-" "-" TID_{i:032x}'
        )
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "incident.log").write_text("\n".join(lines) + "\n")
    res = pipeline.analyze_alb_logs(str(tmp_path / "logs"), out=tmp_path / "out")
    v = res.verdict
    assert v.at_fault == "proxy" and v.top is not None and v.top.id == "target-crash", (
        v.headline,
        [(c.id, c.strength) for c in v.causes],
    )
    assert "undetermined" not in v.headline and v.top.strength >= 0.8
    assert all(c.id != "keepalive-race" for c in v.causes)  # no close came at once
    w = v.top.window
    assert w is not None and w.target == "10.0.2.20:8000"
    assert 39 <= w.first_ts - t0 <= 41 and 74 <= w.last_ts - t0 <= 80
    text = " ".join(v.top.evidence)
    assert "closed mid-request" in text and "ALB 503" in text and "answered nothing more" in text
    for c in v.causes:
        _agrees_with_itself(c)
    # summary.json carries the window for `albprobe replay`
    top = json.loads((tmp_path / "out" / "summary.json").read_text())["causes"][0]
    assert top["id"] == "target-crash" and top["window"]["target"] == "10.0.2.20:8000"
    assert top["window"]["offset_s"] == pytest.approx(w.first_ts - t0, abs=0.5)
    # the heat strip: the burst is on the dying target's row, the 503s on the no-target row
    t_first, names, m = res.timeline.by_target
    assert names[-1] == "-" and m[names.index("10.0.2.20:8000")].sum() == pytest.approx(140, abs=2)
    assert m[names.index("10.0.1.10:8000")].sum() == 0 and m[-1].sum() == 50
    assert plots.heat_strip_png(res.timeline, w)[:4] == b"\x89PNG"
    assert 'id="heat"' in (tmp_path / "out" / "report.html").read_text()


def test_a_flapping_target_is_named_though_nothing_failed(tmp_path):
    inc = alb_incidents.draw("health-check-flapping", 11)
    inc.reqs = [r for r in inc.reqs if r.elb < 500]  # the other targets took every request
    v = _analyze(tmp_path, inc).verdict
    assert v.at_fault == "proxy" and v.top is not None, v.headline
    assert v.top.id == "health-check-flapping" and "No request failed" in v.headline
    assert v.top.window is not None and v.top.window.target == inc.target


def test_a_crash_and_a_deploy_are_named_with_what_tells_them_apart(tmp_path):
    v = _analyze(tmp_path, alb_incidents.draw("deploy-no-drain", SEEDS["deploy-no-drain"])).verdict
    assert v.top is not None and v.top.id == "deploy"
    assert any("cannot tell" in e and "describe-services" in e for e in v.top.evidence)


def test_the_generator_is_seeded_and_each_window_differs():
    a, b = alb_incidents.draw("target-crash", 3), alb_incidents.draw("target-crash", 3)
    assert a.lines() == b.lines() and a.target == b.target
    drawn = [alb_incidents.draw("target-crash", s) for s in range(20, 26)]
    assert len({len(d.reqs) for d in drawn}) == 6  # traffic and duration vary
    assert len({len(d.targets) for d in drawn}) > 1  # the number of targets varies
    assert len({round(d.first_ts - d.reqs[0].created) for d in drawn}) > 3  # so does the timing
    with pytest.raises(ValueError, match="unknown ALB incident pattern"):
        alb_incidents.draw("gremlins", 1)


def test_the_ranking_names_no_cause():
    """Adding a cause is a module and a line in the registry: verdict.py names none (cors-setup
    is also an at_fault verdict, so it is named there)."""
    src = Path(verdict.__file__).read_text()
    for spec in registry.PROXY:
        assert f'"{spec.id}"' not in src, spec.id
    assert set(verdict.CAUSE_IDS) == {s.id for s in registry.ALL} == set(verdict.WEIGHTS)


def test_no_cause_of_a_recorded_run_contradicts_itself():
    data = Path(__file__).parent / "data" / "testbed"
    for run in sorted(data.iterdir()):
        for c in pipeline.analyze_run(run, write=False).verdict.causes:
            _agrees_with_itself(c)


def _entry(t: float, i: int, target: str, times: str, elb: int, tsc: str) -> str:
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"
    return (
        f"https {when} app/a/1 198.51.100.7:{2000 + i} {target} {times} {elb} {tsc} 300 800 "
        '"GET https://api.example.com:443/api/v1/me/ HTTP/1.1" "ua" ECDHE-RSA-AES128-GCM-SHA256 '
        f'TLSv1.2 arn:aws:elasticloadbalancing:r:1:targetgroup/t/1 "Root=1-{i:08x}" '
        f'"api.example.com" "-" 1 {when} "forward" "-" "-" "{target}" "{tsc}" "-" "-" '
        f"TID_{i:032x}"
    )


@pytest.mark.parametrize("targets", [1, 3])
def test_a_target_that_refused_then_came_back_is_down_not_unreachable(targets, tmp_path):
    """The app's container restarted on its instance (OOM-killed and restarted by Docker, or a
    deploy that restarts it in place): the ALB's connects to it are refused for 25 s, then it
    answers again on the same address. A stray keep-alive race on it a minute before does not
    stretch the outage. It was target-down 0.35 next to connectivity 0.30 (a security group),
    with no window for replay."""
    t0 = 1_790_000_000.0
    names = ["10.0.1.10:8000", "10.0.2.20:8000", "10.0.3.30:8000"][:targets]
    down = names[-1]
    lines = []
    for i in range(1800):  # 10 requests a second for 180 s, round robin
        t, target = t0 + i * 0.1, names[i % targets]
        if i == 300 and target == down:  # a stray race, 60 s before the outage
            lines.append(_entry(t, i, target, "0.000 0.001 -1", 502, "-"))
        elif target == down and 900 <= i < 1150:  # refused from 90 s to 115 s
            lines.append(_entry(t, i, target, "-1 -1 -1", 502, "-"))
        else:
            lines.append(_entry(t, i, target, "0.000 0.031 0.000", 200, "200"))
    v = _analyze_lines(tmp_path, lines).verdict
    ranked = [(c.id, c.strength) for c in v.causes]
    assert v.at_fault == "proxy" and v.top is not None and v.top.id == "target-down", ranked
    assert v.top.strength >= 0.7 and "connectivity" not in {c.id for c in v.causes}, ranked
    w = v.top.window
    assert w is not None and w.target == down
    assert 89 <= w.first_ts - t0 <= 91 and 113 <= w.last_ts - t0 <= 115  # not from the race
    text = " ".join(v.top.evidence)
    assert "came back on the same address" in text and "cannot tell a crash" in text
    assert ("the only target" in text) == (targets == 1)
    assert "OOMKilled" in v.top.fix and "deregister-targets" in v.top.fix
    for c in v.causes:
        _agrees_with_itself(c)


def test_a_target_killed_mid_work_then_restarted_says_it_was_killed(tmp_path):
    """An OOM kill restarted by Docker: the target's requests close mid-request (target time in
    the hundreds of ms, response -1), then its connects are refused, then it serves again. The
    closes tell a kill from a restart on purpose (gunicorn finishes its requests on a stop)."""
    t0 = 1_790_000_000.0
    names = ["10.0.1.10:8000", "10.0.2.20:8000"]
    lines = []
    for i in range(1800):
        t, target = t0 + i * 0.1, names[i % 2]
        if target == names[1] and 900 <= i < 940:  # closed mid-request, 4 s
            lines.append(_entry(t, i, target, f"0.000 0.{300 + i % 5 * 100} -1", 502, "-"))
        elif target == names[1] and 940 <= i < 1150:  # refused, 21 s
            lines.append(_entry(t, i, target, "-1 -1 -1", 502, "-"))
        else:
            lines.append(_entry(t, i, target, "0.000 0.031 0.000", 200, "200"))
    v = _analyze_lines(tmp_path, lines).verdict
    down = next(c for c in v.causes if c.id == "target-down")
    text = " ".join(down.evidence)
    assert "came back on the same address" in text
    assert "20 of its requests were closed mid-request as it went down: it was killed" in text
    assert "cannot tell a crash restarted" not in text


def test_the_terminal_tables_show_whole_targets_and_urls_in_80_columns(tmp_path):
    """In an 80-column terminal (or a CI log) every target read "10.0.1..." and every URL
    "https://...", all alike. Now the names keep their room, the counts that are 0 in every row
    are named under the table instead, URLs of one origin show their paths, and the log-only
    target table has no "0 / 0" health column (there are no health samples)."""
    inc = alb_incidents.draw("target-restart", SEEDS["target-restart"])
    res = _analyze(tmp_path, inc)
    console = Console(record=True, width=80)
    print_summary(res.verdict, console=console, extra_tables=res.extra_tables)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert all(
        line.rstrip().endswith(("│", "┃", "┓", "┩", "┘", "╮", "╯")) or "─" not in line
        for line in text.splitlines()
        if line.startswith(("│", "┃", "┏", "┡", "└"))
    )
    for target in inc.targets:
        assert f"│ {target} " in text or f"│{target} " in text, target
    urls = {r["url"] for r in res.extra_tables["ALB 5xx per URL"]}
    (origin,) = {u.split("/api/")[0] for u in urls}
    assert f"ALB 5xx per URL ({origin})" in text
    for u in urls:
        assert f"│ {u[len(origin) :]} " in text, u
    assert "0 in every row: " in text  # the counts that never fired, named once
    assert "not healthy / samples" not in text and "None" not in text


@pytest.mark.parametrize("served_first", [False, True])
def test_a_target_refusing_to_the_end(served_first, tmp_path):
    """Refusals that never end. From the target's first request: a port nothing listens on (a
    wrong target port, or an app down all along) - connectivity, target-down beside it. After
    it served on that address: the app stopped listening on a port that was right - target-down
    (it was connectivity 0.72, whose fix opens a security group: a security group drops packets,
    it does not refuse). A client that gave up (460) after the last refusal is no sign that it
    came back: it was counted as one, and the sweep's connect-fail:9026 read as target-down 0.35."""
    t0 = 1_790_000_000.0
    names = ["10.0.1.10:8000", "10.0.2.20:8000"]
    start = 600 if served_first else 0
    lines = [
        _entry(t0 + i * 0.1, i, names[i % 2], "-1 -1 -1", 502, "-")
        if i % 2 and i >= start
        else _entry(t0 + i * 0.1, i, names[i % 2], "0.000 0.031 0.000", 200, "200")
        for i in range(1799)
    ]
    lines.append(_entry(t0 + 179.9, 1799, names[1], "0.000 -1 -1", 460, "-"))
    v = _analyze_lines(tmp_path, lines).verdict
    ids = [(c.id, c.strength) for c in v.causes]
    assert not any("came back" in e for c in v.causes for e in c.evidence)
    if not served_first:
        assert ids[0][0] == "connectivity" and ids[0][1] >= 0.7 and "target-down" in dict(ids), ids
        return
    assert ids[0][0] == "target-down" and ids[0][1] >= 0.7, ids
    text = " ".join(v.causes[0].evidence)
    assert "answered 300 requests, then from" in text and "stopped listening" in text
    assert dict(ids).get("connectivity", 0) < ids[0][1]
    w = v.causes[0].window
    assert w is not None and w.target == names[1] and 59 <= w.first_ts - t0 <= 61


def test_a_listener_rules_fixed_response_is_not_a_missing_target(tmp_path):
    """Two minutes of a maintenance rule's 503 (actions_executed fixed-response, target '-',
    -1/-1/-1) between normal traffic on two targets. It read as no-routable-target 0.86 ('the
    target group had no registered target'), with its fix, and '... found no routable target'."""
    t0 = 1_790_000_000.0
    names = ["10.0.1.10:8000", "10.0.2.20:8000"]
    lines = []
    for i in range(3000):  # 10 a second for 300 s
        t = t0 + i * 0.1
        if 1200 <= i < 2400:
            line = _entry(t, i, "-", "-1 -1 -1", 503, "-")
            lines.append(line.replace('"forward"', '"fixed-response"'))
        else:
            lines.append(_entry(t, i, names[i % 2], "0.000 0.031 0.000", 200, "200"))
    res = _analyze_lines(tmp_path, lines)
    v = res.verdict
    ids = [(c.id, c.strength) for c in v.causes]
    assert v.top is not None and v.top.id == "fixed-response" and v.top.strength >= 0.8, ids
    assert "no-routable-target" not in dict(ids), ids
    text = " ".join(v.top.evidence)
    assert "1,200 ALB 5xx (1,200 x 503) were a listener rule's fixed response" in text
    assert "maintenance page" in text and "no Access-Control-Allow-Origin" in text
    assert "describe-rules" in v.top.fix
    w = v.top.window
    assert w is not None and w.target is None and 119 <= w.first_ts - t0 <= 121
    console = Console(record=True, width=100)
    print_summary(v, console=console, extra_tables=res.extra_tables)
    assert "found no routable target" not in console.export_text()


def test_the_headline_counts_each_status_the_alb_answered(tmp_path):
    """A window of 504s: the headline said '(target_status_code '-'; 0 x 502)'."""
    t0 = 1_790_000_000.0
    lines = [
        _entry(t0 + i * 0.1, i, "10.0.1.10:8000", "0.000 -1 -1", 504, "-")
        if i % 10 == 0
        else _entry(t0 + i * 0.1, i, "10.0.1.10:8000", "0.000 0.031 0.000", 200, "200")
        for i in range(600)
    ]
    v = _analyze_lines(tmp_path, lines).verdict
    assert "(target_status_code '-'; 60 x 504)" in v.headline, v.headline


def test_a_window_is_dated_and_its_offset_readable_at_any_length():
    """A day or a week of logs: '07:34:31 (27271 s into the window)' named no day and counted
    seconds; the time is what a user types into --since next."""
    from analysis.causes.base import Window

    t = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
    assert Window(t, t + 38, 151.0, "10.0.2.108:8000").describe() == (
        "struck 2026-11-18 11:06:40 to 11:07:18 UTC (151 s into the window) on 10.0.2.108:8000"
    )
    assert "(25 min into the window)" in Window(t, t + 1, 1500.0).describe()
    across = Window(t, t + 86400, 27271.0).describe()
    assert across == "struck 2026-11-18 11:06:40 to 2026-11-19 11:06:40 UTC (7.6 h into the window)"
