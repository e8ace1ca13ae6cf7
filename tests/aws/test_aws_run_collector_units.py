"""The AWS run collectors (probes/aws/run_collectors.py) through the registry, against moto server,
without a load: what each writes and records under run.json's "aws"."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime

from albprobe.collectors import RunSetup, collectors_for
from core.collector import RunContext, merge_record
from core.config import config_from_dict
from core.rundir import RunDir
from probes.aws import accesslogs
from tests.aws.aws_topology import ACCOUNT, REGION


def _log_key(lb_key_id: str, end: datetime) -> str:
    folder = f"alb/AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{end:%Y/%m/%d}/"
    return (
        f"{folder}{ACCOUNT}_elasticloadbalancing_{REGION}_{lb_key_id}_{end:%Y%m%dT%H%M}Z_"
        "10.0.1.5_00000001.log.gz"
    )


def _wait(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _run(config, tmp_path, opt_ins=frozenset()):
    rundir = RunDir.create(tmp_path, "run")
    lines: list[str] = []
    run = RunContext(rundir, config, config.target, time.time() - 30, lines.append)
    cs = collectors_for(RunSetup(config, None, frozenset(opt_ins)))
    meta: dict = {}
    for c in cs:
        c.start(run)
        merge_record(meta, c.result().record)
    for c in cs:  # "the load": until the pollers have sampled twice
        poller = getattr(c, "poller", None)
        if poller is not None:
            _wait(lambda p=poller: p.samples >= 2)
    for c in cs:
        c.stop(run)
        merge_record(meta, c.result().record)
    return cs, meta, lines, rundir


def _aws(moto, clients, **extra):
    return {"region": clients.region, "endpoint_url": moto, "poll_interval": "0.2s", **extra}


def test_url_run_collectors_record_under_aws(moto, clients, prod, tmp_path):
    end = datetime.fromtimestamp(time.time() + 60, tz=UTC)
    key = _log_key(accesslogs.parse_lb_arn(prod.lb_arn).key_id, end)
    clients.s3.put_object(Bucket=prod.bucket, Key=key, Body=gzip.compress(b"http x 502 -\n"))
    cfg = config_from_dict(
        {
            # the CORS scan hits a closed loopback port: inconclusive, recorded, never fatal
            "target": "http://127.0.0.1:9",
            "aws": _aws(moto, clients, load_balancer=prod.lb_name),
        }
    )
    cs, meta, lines, rundir = _run(cfg, tmp_path, {"alb-access-logs", "ssm-logs"})
    by_name = {c.name: c.result() for c in cs}
    aws = meta["aws"]
    assert aws["load_balancer_arn"] == prod.lb_arn and aws["target_group_arn"] == prod.tg_arn
    assert "cloudwatch_rows" in aws or "cloudwatch_error" in aws
    assert aws["access_logs"] == 1 and by_name["access-logs"].files == [f"logs/alb/{key}"]
    assert (rundir.path / "logs" / "alb" / key).exists()
    assert aws["ssm_logs"] == [f"gunicorn-ssm-{prod.instance}.log"]
    assert by_name["ssm-logs"].files == [f"logs/gunicorn-ssm-{prod.instance}.log"]
    health = meta["collectors"]["health"]
    assert health["kind"] == "alb" and health["samples"] >= 2
    assert by_name["health"].files and all(f.startswith("health/") for f in by_name["health"].files)
    assert meta["cors_scan"]["findings"] == 0 and meta["cors_scan"]["inconclusive"]
    assert any(line.startswith("polling ALB target health every 0.2s") for line in lines)


def test_unknown_load_balancer_is_recorded_and_nothing_else_is_attempted(moto, clients, tmp_path):
    cfg = config_from_dict(
        {"target": "http://127.0.0.1:9", "aws": _aws(moto, clients, load_balancer="no-such-alb")}
    )
    cs, meta, lines, _ = _run(cfg, tmp_path, {"ssm-logs"})
    assert "no-such-alb" in meta["aws"]["error"]
    assert meta["aws"]["ssm_logs_error"].startswith("no target group resolved")
    assert "cloudwatch_rows" not in meta["aws"] and "collectors" not in meta
    assert [ln for ln in lines if "ALB target-health poller not started" in ln]


def test_no_aws_settings_means_no_aws_section(tmp_path):
    cfg = config_from_dict({"target": "http://127.0.0.1:9"})
    cs, meta, _, _ = _run(cfg, tmp_path)
    assert [c.name for c in cs] == ["cors-scan", "cloudwatch"]
    assert "aws" not in meta and "collectors" not in meta
