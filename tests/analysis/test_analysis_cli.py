"""`albprobe analyze` end to end through the CLI entry point (exit codes, outputs, one-line errors)."""

import json

import pytest

from albprobe.cli import main
from fixtures import synth


def test_analyze_run_writes_reports(mode_runs, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["analyze", str(mode_runs["keepalive-race"]), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "keepalive-race" in text and "at fault: proxy" in text
    assert {p.name for p in out.iterdir()} >= {"summary.json", "report.html", "timeline.png"}


def test_fail_on_sets_exit_code(mode_runs, tmp_path, capsys):
    args = ["analyze", str(mode_runs["capacity"]), "--out", str(tmp_path / "a")]
    assert main(args + ["--fail-on", "5xx_rate>0.01", "--fail-on", "p99>800"]) == 1
    err = capsys.readouterr().err
    assert "5xx_rate>0.01" in err and "p99>800" in err and len(err.strip().splitlines()) == 1
    assert main(args + ["--fail-on", "5xx_rate>0.5", "--fail-on", "p99>60s"]) == 0
    assert (
        main(
            [
                "analyze",
                str(mode_runs["healthy"]),
                "--out",
                str(tmp_path / "b"),
                "--fail-on",
                "5xx_rate>0.01",
                "--fail-on",
                "p99>800",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert [b["breached"] for b in data["fail_on"]] == [False, False]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["analyze", "/nonexistent/run"], "does not exist"),
        (["analyze"], "either a run directory or --alb-logs"),
        (["analyze", "--alb-logs", "/nonexistent/logs"], "no such file or folder"),
        (["analyze", "--alb-logs", "s3://bucket/prefix"], "--since and --until are required"),
        (["analyze", "--alb-logs", ".", "--since", "yesterday"], "not a time"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_fail_on_expression(mode_runs, capsys):
    assert main(["analyze", str(mode_runs["healthy"]), "--fail-on", "p99 is high"]) == 2
    assert "cannot read this threshold" in capsys.readouterr().err


def test_empty_folder_is_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["analyze", str(tmp_path / "empty")]) == 2
    assert "no requests table" in capsys.readouterr().err


def test_alb_logs_only(tmp_path, capsys):
    synth.write_alb_logs(tmp_path / "logs", 6000, files=2)
    out = tmp_path / "rep"
    rc = main(
        [
            "analyze",
            "--alb-logs",
            str(tmp_path / "logs"),
            "--since",
            "2026-11-26T13:00:00Z",
            "--until",
            "2026-11-26T14:00:00",
            "--out",
            str(out),
            "--fail-on",
            "alb_502>=1",
        ]
    )
    assert rc == 1
    data = json.loads((out / "summary.json").read_text())
    assert data["at_fault"] == "proxy" and data["causes"][0]["id"] == "keepalive-race"
    assert "keep-alive signature" in data["headline"]
    per_target = data["tables"]["ALB 5xx per target"]
    assert {r["target"] for r in per_target} == {"10.0.1.10:8000", "10.0.2.11:8000"}
    assert sum(r["keepalive_signature"] for r in per_target) == 12
    per_minute = data["tables"]["ALB 5xx per minute and target"]
    assert per_minute and all(r["alb_5xx"] == r["keepalive_signature"] for r in per_minute)
    assert any("CORS" in m for m in data["missing_evidence"])


def test_alb_logs_window_with_no_entries(tmp_path, capsys):
    synth.write_alb_logs(tmp_path / "logs", 100, files=1)
    rc = main(
        [
            "analyze",
            "--alb-logs",
            str(tmp_path / "logs"),
            "--since",
            "2020-01-01T00:00Z",
            "--until",
            "2020-01-02T00:00Z",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "no ALB log entry in the window" in err
    # where the entries are, and how to give a local time (a window in KST misses by 9 hours)
    assert "the 100 entries read span 20" in err and " UTC" in err and "+09:00" in err
    assert len(err.strip().splitlines()) == 1


def test_json_flag_prints_summary(mode_runs, tmp_path, capsys):
    assert (
        main(["analyze", str(mode_runs["cors-misconfig"]), "--out", str(tmp_path / "j"), "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["at_fault"] == "cors-setup"


def test_s3_goes_through_the_collector(monkeypatch, tmp_path, capsys):
    import sys
    import types

    calls = []

    def download_access_logs(
        clients, uri, start, end, dest, *, load_balancer=None, one_balancer=False
    ):
        calls.append(
            (
                uri,
                start,
                end,
                dest,
                clients.region,
                clients.endpoint_url,
                load_balancer,
                one_balancer,
            )
        )
        return synth.write_alb_logs(dest / "AWSLogs", 3000, files=1)

    fake = types.ModuleType("probes.aws.collectors")
    fake.download_access_logs = download_access_logs
    monkeypatch.setitem(sys.modules, "probes.aws.collectors", fake)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    cfg = tmp_path / "albprobe.toml"
    # analyze --alb-logs s3:// reads the config's [aws] section as `check` does.
    cfg.write_text(
        '[aws]\nregion = "eu-west-1"\nendpoint_url = "http://127.0.0.1:9"\n'
        'load_balancer = "my-loadbalancer"\n'
    )
    out = tmp_path / "rep"
    rc = main(
        [
            "analyze",
            "--config",
            str(cfg),
            "--alb-logs",
            "s3://bucket/prefix",
            "--since",
            "2026-11-26T13:00:00Z",
            "--until",
            "2026-11-26T14:00:00Z",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    ((uri, start, end, dest, region, endpoint, lb, one),) = calls
    assert (region, endpoint) == ("eu-west-1", "http://127.0.0.1:9")
    assert lb == "my-loadbalancer" and one  # narrowed by [aws] load_balancer, one balancer
    assert uri == "s3://bucket/prefix" and start == synth.T0 and end == synth.T0 + 3600
    assert dest == out / "alb-logs"
    data = json.loads((out / "summary.json").read_text())
    assert data["figures"]["alb_entries"] == 3000 and data["figures"]["alb_elb_502"] == 6


def test_alb_logs_gunicorn_timeout_flag_reaches_the_close_kinds(tmp_path, capsys):
    """--gunicorn-timeout 5: closes after 5 s are worker kills, not late closes."""
    synth.write_alb_logs(
        tmp_path / "logs", 3000, files=1, keepalive_every=0, kill_every=100, kill_after_s=5.0
    )
    out = tmp_path / "rep"
    rc = main(
        [
            "analyze",
            "--alb-logs",
            str(tmp_path / "logs"),
            "--gunicorn-timeout",
            "5",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    fig = json.loads((out / "summary.json").read_text())["figures"]
    assert fig["alb_timeout_kill"] == 30 and fig["alb_kill_timeout_s"] == 5.0
    assert main(["analyze", "--alb-logs", str(tmp_path / "logs"), "--gunicorn-timeout", "0"]) == 2
    assert "--gunicorn-timeout 0" in capsys.readouterr().err
