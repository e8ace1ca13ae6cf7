"""The AWS collectors write into a run directory; each test reads back what was written."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from core.errors import AlbprobeError
from core.rundir import RunDir
from probes.aws import accesslogs
from probes.aws.collectors import (
    METRICS,
    SSM_OUTPUT_LIMIT,
    TargetHealthPoller,
    collect_cloudwatch,
    container_memory_via_ssm,
    download_access_logs,
    fetch_gunicorn_logs_via_ssm,
    metric_queries,
    parse_container_memory,
)
from tests.aws.aws_topology import ACCOUNT, REGION, build_prod


def _wait(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def _stub(service):
    client = boto3.client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    return client, Stubber(client)


@pytest.fixture
def rundir(tmp_path):
    return RunDir.create(tmp_path, "run-1")


# --- target health poller ----------------------------------------------------------------------


def test_poller_writes_health_series(clients, prod, rundir):
    poller = TargetHealthPoller(clients, prod.tg_arn, rundir, interval=0.05)
    with poller:
        _wait(lambda: poller.samples >= 3)
        clients.ec2.stop_instances(InstanceIds=[prod.instance])
        n = poller.samples
        _wait(lambda: poller.samples >= n + 2)
    rows = rundir.read_table("health").to_pylist()
    assert poller.errors == 0 and len(rows) == poller.samples
    assert {r["collector"] for r in rows} == {"alb"}
    assert {r["target"] for r in rows} == {prod.instance}
    ts = [r["ts"] for r in rows]
    assert ts == sorted(ts)
    assert rows[0]["state"] == "healthy" and rows[0]["reason"] is None
    assert rows[-1]["state"] == "unused" and rows[-1]["reason"] == "Target.InvalidState"
    assert rows[-1]["description"] == "Target is in the stopped state"


def test_poller_survives_throttling_and_stops_on_access_denied(clients, prod, rundir):
    elbv2, stub = _stub("elbv2")
    stub.add_client_error(
        "describe_target_health", service_error_code="Throttling", http_status_code=400
    )
    stub.add_response(
        "describe_target_health",
        {
            "TargetHealthDescriptions": [
                {
                    "Target": {"Id": "10.0.11.7", "Port": 8000},
                    "TargetHealth": {
                        "State": "unhealthy",
                        "Reason": "Target.Timeout",
                        "Description": "Request timed out",
                    },
                }
            ]
        },
        {"TargetGroupArn": prod.tg_arn},
    )
    stub.add_client_error(
        "describe_target_health",
        service_error_code="AccessDenied",
        service_message="not authorized to perform: elasticloadbalancing:DescribeTargetHealth",
        http_status_code=403,
    )
    stub.activate()
    clients.__dict__["elbv2"] = elbv2
    poller = TargetHealthPoller(clients, prod.tg_arn, rundir, interval=0.02).start()
    _wait(lambda: poller.fatal)
    poller.stop()
    stub.assert_no_pending_responses()
    assert poller.errors == 2 and poller.samples == 1
    rows = rundir.read_table("health").to_pylist()
    assert [(r["target"], r["state"], r["reason"]) for r in rows] == [
        ("10.0.11.7:8000", "unhealthy", "Target.Timeout")
    ]
    log = (rundir.logs / "alb-health-poller.log").read_text()
    assert "AWS throttled elasticloadbalancing:DescribeTargetHealth" in log
    assert "AWS denied elasticloadbalancing:DescribeTargetHealth" in log


def test_poller_rejects_bad_interval(clients, prod, rundir):
    with pytest.raises(AlbprobeError):
        TargetHealthPoller(clients, prod.tg_arn, rundir, interval=0)


# --- CloudWatch --------------------------------------------------------------------------------


def test_metric_queries_use_the_published_dimensions():
    lb = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/academy-alb/50dc6c495c0c9188"
    tg = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/academy-api/73e2d6bc24d8a067"
    queries, index = metric_queries(lb, tg, 60)
    dims = {
        (q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"]): {
            d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]
        }
        for q in queries
    }
    lb_only = {"LoadBalancer": "app/academy-alb/50dc6c495c0c9188"}
    both = {**lb_only, "TargetGroup": "targetgroup/academy-api/73e2d6bc24d8a067"}
    assert dims[("HTTPCode_ELB_502_Count", "Sum")] == lb_only
    assert dims[("HTTPCode_ELB_5XX_Count", "Sum")] == lb_only
    assert dims[("RejectedConnectionCount", "Sum")] == lb_only
    assert dims[("UnHealthyHostCount", "Maximum")] == both
    assert dims[("TargetResponseTime", "p99")] == both
    assert dims[("TargetConnectionErrorCount", "Sum")] == both
    assert {m for m, _, _ in METRICS} == {name for name, _ in dims}
    assert len({q["Id"] for q in queries}) == len(queries) == len(index)
    # Without a target group only the load balancer's own metrics are asked for.
    q2, _ = metric_queries(lb, None, 60, percentiles=False)
    assert all(len(q["MetricStat"]["Metric"]["Dimensions"]) == 1 for q in q2)
    assert not any(q["MetricStat"]["Stat"].startswith("p") for q in q2)


def test_collect_cloudwatch_from_moto(clients, prod, rundir):
    lb_dim = accesslogs.parse_lb_arn(prod.lb_arn).dimension
    tg_dim = accesslogs.tg_dimension(prod.tg_arn)
    t0 = (int(time.time()) // 60 - 10) * 60
    cw = clients.cloudwatch

    def put(name, dims, value, at):
        cw.put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    "Value": value,
                    "Timestamp": datetime.fromtimestamp(at, tz=UTC),
                }
            ],
        )

    put("HTTPCode_ELB_502_Count", {"LoadBalancer": lb_dim}, 3, t0 + 10)
    put("HTTPCode_ELB_502_Count", {"LoadBalancer": lb_dim}, 4, t0 + 20)
    put("HTTPCode_ELB_502_Count", {"LoadBalancer": lb_dim}, 5, t0 + 70)
    put("UnHealthyHostCount", {"LoadBalancer": lb_dim, "TargetGroup": tg_dim}, 1, t0 + 70)
    put("UnHealthyHostCount", {"LoadBalancer": lb_dim, "TargetGroup": tg_dim}, 2, t0 + 80)
    # Published with other dimensions (or outside the window): must not be returned.
    put(
        "HTTPCode_ELB_502_Count",
        {"LoadBalancer": lb_dim, "AvailabilityZone": "us-east-1a"},
        99,
        t0 + 30,
    )
    put("HTTPCode_ELB_502_Count", {"LoadBalancer": lb_dim}, 77, t0 + 400)

    n = collect_cloudwatch(
        clients, prod.lb_arn, prod.tg_arn, t0 + 5, t0 + 170, rundir, percentiles=False
    )
    rows = rundir.read_table("metrics").to_pylist()
    assert n == len(rows)
    got = {(r["metric"], r["stat"], r["ts"]): r["value"] for r in rows}
    assert got[("HTTPCode_ELB_502_Count", "Sum", float(t0))] == 7
    assert got[("HTTPCode_ELB_502_Count", "Sum", float(t0 + 60))] == 5
    assert got[("UnHealthyHostCount", "Maximum", float(t0 + 60))] == 2
    assert got[("UnHealthyHostCount", "Average", float(t0 + 60))] == 1.5
    assert 77 not in got.values() and 99 not in got.values()
    dims = {r["metric"]: r["dimensions"] for r in rows}
    assert dims["HTTPCode_ELB_502_Count"] == f"LoadBalancer={lb_dim}"
    assert dims["UnHealthyHostCount"] == f"LoadBalancer={lb_dim},TargetGroup={tg_dim}"
    assert {r["period"] for r in rows} == {60}


def test_collect_cloudwatch_paginates_and_keeps_percentiles(clients, prod, rundir):
    cw, stub = _stub("cloudwatch")
    t0 = 1_790_000_040.0
    when = datetime.fromtimestamp(t0, tz=UTC)
    queries, index = metric_queries(prod.lb_arn, prod.tg_arn, 60)
    p99 = next(qid for qid, (m, s, _) in index.items() if (m, s) == ("TargetResponseTime", "p99"))
    e502 = next(qid for qid, (m, s, _) in index.items() if m == "HTTPCode_ELB_502_Count")
    stub.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": p99, "Timestamps": [when], "Values": [1.25], "StatusCode": "PartialData"}
            ],
            "NextToken": "page-2",
        },
    )
    stub.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": e502, "Timestamps": [when], "Values": [12.0], "StatusCode": "Complete"}
            ]
        },
    )
    stub.activate()
    clients.__dict__["cloudwatch"] = cw
    n = collect_cloudwatch(clients, prod.lb_arn, prod.tg_arn, t0, t0 + 120, rundir)
    stub.assert_no_pending_responses()
    rows = rundir.read_table("metrics").to_pylist()
    assert n == 2
    assert {(r["metric"], r["stat"], r["value"]) for r in rows} == {
        ("TargetResponseTime", "p99", 1.25),
        ("HTTPCode_ELB_502_Count", "Sum", 12.0),
    }


def test_collect_cloudwatch_rejects_bad_windows(clients, prod, rundir):
    with pytest.raises(AlbprobeError):
        collect_cloudwatch(clients, prod.lb_arn, prod.tg_arn, 100.0, 50.0, rundir)
    with pytest.raises(AlbprobeError):
        collect_cloudwatch(clients, prod.lb_arn, prod.tg_arn, 0.0, 600.0, rundir, period=45)


# --- access logs from S3 -----------------------------------------------------------------------


def _key(prefix, lb_key_id, end: datetime, ip="10.0.1.5", kind=""):
    folder = f"{prefix}/AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{end:%Y/%m/%d}/"
    return (
        f"{folder}{kind}{ACCOUNT}_elasticloadbalancing_{REGION}_{lb_key_id}_{end:%Y%m%dT%H%M}Z_"
        f"{ip}_{abs(hash((lb_key_id, end, ip, kind))) % 10**8:08d}.log.gz"
    )


@pytest.fixture
def logs_bucket(clients, prod):
    """ALB-style objects around a 10:02-10:13 UTC window; returns (window, keys in window)."""
    lb = accesslogs.parse_lb_arn(prod.lb_arn)
    base = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    keys_in, keys_out = [], []
    for minutes in (-5, 0, 5, 10, 15, 20, 24 * 60 + 5):
        end = base + timedelta(minutes=minutes)
        for ip in ("10.0.1.5", "10.0.2.9"):
            k = _key("alb", lb.key_id, end, ip)
            (keys_in if minutes in (5, 10, 15) else keys_out).append(k)
    other_lb = _key("alb", "app.other-alb.0123456789abcdef", base + timedelta(minutes=10))
    conn_log = _key("alb", lb.key_id, base + timedelta(minutes=10), kind="conn_log_")
    elsewhere = _key("other-prefix", lb.key_id, base + timedelta(minutes=10))
    for k in [*keys_in, *keys_out, other_lb, conn_log, elsewhere]:
        line = f"http {k} 502 -\n".encode()
        clients.s3.put_object(Bucket=prod.bucket, Key=k, Body=gzip.compress(line))
    window = (base + timedelta(minutes=2)).timestamp(), (base + timedelta(minutes=13)).timestamp()
    return window, sorted(keys_in), other_lb


def test_download_access_logs_fetches_only_the_window(clients, prod, logs_bucket, rundir):
    (start, end), keys_in, _ = logs_bucket
    dest = rundir.logs / "alb"
    paths = download_access_logs(clients, prod.lb_arn, start, end, dest)
    assert sorted(str(p.relative_to(dest)) for p in paths) == keys_in
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.gz")) == keys_in
    for p in paths:
        key = str(p.relative_to(dest))
        assert gzip.decompress(p.read_bytes()).decode() == f"http {key} 502 -\n"
    # fetching again skips the files already there (same size): re-analysis is cheap
    before = {p: p.stat().st_mtime_ns for p in paths}
    time.sleep(0.01)
    download_access_logs(clients, prod.lb_arn, start, end, dest)
    assert {p: p.stat().st_mtime_ns for p in paths} == before
    # by name too (bucket/prefix from the attributes)
    again = download_access_logs(clients, prod.lb_name, start, end, rundir.path / "again")
    assert len(again) == len(keys_in)


def test_download_access_logs_from_an_s3_uri(clients, prod, logs_bucket, tmp_path):
    (start, end), keys_in, other_lb = logs_bucket
    uri = f"s3://{prod.bucket}/alb"
    every_lb = download_access_logs(clients, uri, start, end, tmp_path / "a")
    assert sorted(str(p.relative_to(tmp_path / "a")) for p in every_lb) == sorted(
        [*keys_in, other_lb]
    )
    one_lb = download_access_logs(
        clients, uri, start, end, tmp_path / "b", load_balancer=prod.lb_arn
    )
    assert sorted(str(p.relative_to(tmp_path / "b")) for p in one_lb) == keys_in
    by_name = download_access_logs(
        clients, uri + "/", start, end, tmp_path / "c", load_balancer="academy-alb"
    )
    assert len(by_name) == len(keys_in)
    deep = f"{uri}/AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/"
    assert len(download_access_logs(clients, deep, start, end, tmp_path / "d")) == len(keys_in) + 1
    deep_one = download_access_logs(
        clients, deep, start, end, tmp_path / "e", load_balancer=prod.lb_arn
    )
    assert len(deep_one) == len(keys_in)
    # analyze and replay ask for one balancer: refused before any download, both named
    with pytest.raises(AlbprobeError) as e:
        download_access_logs(clients, uri, start, end, tmp_path / "f", one_balancer=True)
    assert "objects are of 2 load balancers" in e.value.message and "other-alb" in e.value.message
    assert not (tmp_path / "f").exists()


def test_access_logs_not_enabled(clients, tmp_path):
    prod = build_prod(clients, access_logs=False)
    with pytest.raises(AlbprobeError) as e:
        download_access_logs(clients, prod.lb_arn, 0.0, 600.0, tmp_path)
    assert "access logs are not enabled on academy-alb" in e.value.message
    assert "access_logs.s3.enabled,Value=true" in e.value.hint


def test_access_log_key_helpers():
    k = accesslogs.parse_key(
        "p/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_"
        "elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_"
        "172.160.001.192_20sg8hgm.log.gz"
    )
    assert k is not None and k.lb == "app.my-loadbalancer.1234567890abcdef"
    assert k.end == datetime(2014, 2, 15, 23, 40, tzinfo=UTC)
    assert accesslogs.parse_key("p/AWSLogs/123456789012/ELBAccessLogTestFile") is None
    lo = datetime(2026, 5, 1, 23, 58, tzinfo=UTC)
    hi = lo + timedelta(minutes=8)
    days = accesslogs.day_prefixes("", ACCOUNT, REGION, lo, hi)
    assert [d.split("/")[-4:-1] for d in days] == [["2026", "05", "01"], ["2026", "05", "02"]]
    folder = days[0]
    sa = accesslogs.start_after(folder, ACCOUNT, REGION, "app.a.1", lo)
    at_lo = (
        f"{folder}{ACCOUNT}_elasticloadbalancing_{REGION}_app.a.1_20260501T2358Z_1.2.3.4_x.log.gz"
    )
    before = at_lo.replace("T2358Z", "T2357Z")
    assert before < sa < at_lo
    with pytest.raises(AlbprobeError):
        accesslogs.parse_s3_uri("https://bucket/prefix")
    assert accesslogs.parse_s3_uri("s3://b/p/q/") == accesslogs.S3Location("b", "p/q")


# --- gunicorn logs through SSM (opt-in) --------------------------------------------------------


def test_ssm_fetch_against_moto(clients, prod, rundir):
    path = fetch_gunicorn_logs_via_ssm(
        clients, prod.instance, 1_790_000_000.0, rundir.logs, poll=0.01
    )
    assert path == rundir.logs / "gunicorn-ssm.log"
    assert path.read_text() == ""  # moto runs nothing; the call sequence is what is tested here
    meta = json.loads((rundir.logs / "gunicorn-ssm.log.meta.json").read_text())
    assert meta["command"] == "docker logs academy-api --since 1790000000 2>&1"
    cmd = clients.ssm.list_commands(CommandId=meta["command_id"])["Commands"][0]
    assert cmd["DocumentName"] == "AWS-RunShellScript"
    assert cmd["Parameters"]["commands"] == [meta["command"]]
    assert cmd["InstanceIds"] == [prod.instance]


def _ssm_stub(clients, invocations):
    ssm, stub = _stub("ssm")
    stub.add_response(
        "send_command", {"Command": {"CommandId": "0b1f1a52-2f0e-4a5b-9d6e-6f6c2b7d9a01"}}
    )
    for inv in invocations:
        if isinstance(inv, str):
            stub.add_client_error("get_command_invocation", service_error_code=inv)
        else:
            stub.add_response("get_command_invocation", inv)
    stub.activate()
    clients.__dict__["ssm"] = ssm
    return stub


def test_ssm_fetch_writes_the_output_and_flags_truncation(clients, tmp_path):
    gunicorn = "[2026-05-01 10:03:00 +0000] [7] [CRITICAL] WORKER TIMEOUT (pid:9)\n"
    stub = _ssm_stub(
        clients,
        [
            "InvocationDoesNotExist",
            {"Status": "InProgress"},
            {"Status": "Success", "StandardOutputContent": gunicorn},
        ],
    )
    out = fetch_gunicorn_logs_via_ssm(
        clients, "i-0123456789abcdef0", 0.0, tmp_path / "g.log", poll=0.01
    )
    stub.assert_no_pending_responses()
    assert out.read_text() == gunicorn
    assert json.loads((tmp_path / "g.log.meta.json").read_text())["truncated"] is False
    _ssm_stub(clients, [{"Status": "Success", "StandardOutputContent": "x" * SSM_OUTPUT_LIMIT}])
    fetch_gunicorn_logs_via_ssm(
        clients, "i-0123456789abcdef0", 0.0, tmp_path / "big.log", poll=0.01
    )
    assert json.loads((tmp_path / "big.log.meta.json").read_text())["truncated"] is True


def test_ssm_fetch_errors_are_one_line(clients, tmp_path):
    _ssm_stub(
        clients,
        [{"Status": "Failed", "StandardErrorContent": "Error: No such container: academy-api\n"}],
    )
    with pytest.raises(AlbprobeError) as e:
        fetch_gunicorn_logs_via_ssm(
            clients, "i-0123456789abcdef0", 0.0, tmp_path / "g.log", poll=0.01
        )
    assert "ended Failed: Error: No such container: academy-api" in e.value.message
    ssm, stub = _stub("ssm")
    stub.add_client_error("send_command", service_error_code="InvalidInstanceId")
    stub.activate()
    clients.__dict__["ssm"] = ssm
    with pytest.raises(AlbprobeError) as e:
        fetch_gunicorn_logs_via_ssm(clients, "i-0123456789abcdef0", 0.0, tmp_path / "g.log")
    assert (
        "not managed by SSM" in e.value.message and "AmazonSSMManagedInstanceCore" in e.value.hint
    )
    with pytest.raises(AlbprobeError):
        fetch_gunicorn_logs_via_ssm(
            clients, "i-0123456789abcdef0", 0.0, tmp_path, container="api; rm -rf /"
        )


def test_collect_cloudwatch_twice_replaces_its_rows(clients, prod, rundir):
    lb_dim = accesslogs.parse_lb_arn(prod.lb_arn).dimension
    t0 = (int(time.time()) // 60 - 5) * 60
    clients.cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": [{"Name": "LoadBalancer", "Value": lb_dim}],
                "Value": 10,
                "Timestamp": datetime.fromtimestamp(t0 + 1, tz=UTC),
            }
        ],
    )
    for _ in range(2):
        collect_cloudwatch(clients, prod.lb_arn, None, t0, t0 + 60, rundir, percentiles=False)
    rows = rundir.read_table("metrics").to_pylist()
    assert [(r["metric"], r["value"]) for r in rows] == [("RequestCount", 10.0)]


# --- gunicorn worker memory through SSM (opt-in, `albprobe tune --ssm-stats`) ------------------

DOCKER_MEMORY = """{"BlockIO":"0B / 0B","CPUPerc":"1.02%","Container":"academy-api","ID":"3f2a","MemPerc":"32.10%","MemUsage":"642.5MiB / 1.953GiB","Name":"academy-api","NetIO":"1MB / 2MB","PIDs":"23"}
---
PID                 PPID                RSS                 COMMAND
4121                4101                40960               /usr/local/bin/python /usr/local/bin/gunicorn config.wsgi -w 3
4180                4121                153600              /usr/local/bin/python /usr/local/bin/gunicorn config.wsgi -w 3
4181                4121                163840              /usr/local/bin/python /usr/local/bin/gunicorn config.wsgi -w 3
4182                4121                174080              /usr/local/bin/python /usr/local/bin/gunicorn config.wsgi -w 3
4200                4101                2048                /bin/sh -c sleep infinity
"""


def test_container_memory_parses_docker_stats_and_top():
    m = parse_container_memory("i-0123456789abcdef0", DOCKER_MEMORY)
    assert m.workers == 3  # the master (parent 4101) is not a worker
    assert m.per_worker_mb == pytest.approx((150 + 160 + 170) / 3)
    assert m.total_mb == pytest.approx(642.5) and m.limit_mb == pytest.approx(1.953 * 1024)
    empty = parse_container_memory("i-0123456789abcdef0", "")
    assert empty.workers == 0 and empty.per_worker_mb is None and empty.limit_mb is None


def test_container_memory_via_ssm_sends_one_read_only_command(clients, prod):
    m = container_memory_via_ssm(clients, prod.instance, poll=0.01)
    assert m.workers == 0  # moto runs nothing; the call sequence is what is tested here
    cmd = clients.ssm.list_commands(InstanceId=prod.instance)["Commands"][-1]
    (line,) = cmd["Parameters"]["commands"]
    assert line.startswith("docker stats --no-stream --format '{{json .}}' academy-api;")
    assert line.endswith("docker top academy-api -o pid,ppid,rss,args")
    stub = _ssm_stub(clients, [{"Status": "Success", "StandardOutputContent": DOCKER_MEMORY}])
    m = container_memory_via_ssm(clients, "i-0123456789abcdef0", poll=0.01)
    stub.assert_no_pending_responses()
    assert m.workers == 3 and m.per_worker_mb == pytest.approx(160)
    with pytest.raises(AlbprobeError) as e:
        container_memory_via_ssm(clients, "i-0123456789abcdef0", "api; rm -rf /")
    assert "not a Docker container name" in e.value.message
