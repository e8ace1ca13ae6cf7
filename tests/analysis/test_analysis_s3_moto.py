"""`albprobe analyze --alb-logs s3://...` end to end against moto in server mode (real HTTP S3),
through the AWS area's collector (probes/aws/collectors.download_access_logs)."""

import contextlib
import gzip
import json

import boto3
import pytest

from albprobe.cli import main
from fixtures import synth
from tests.aws.conftest import moto_url  # noqa: F401  (the AWS area's session-wide moto server)

REGION = "us-east-2"
ACCOUNT = "123456789012"


@pytest.fixture
def bucket(moto_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    name = "alb-logs-analysis-test"
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    lines = list(synth.alb_lines(6000, seed=4))  # 13:00:00 .. 13:01:00 UTC, 100 lines/s
    for k, end in enumerate(("1305", "1310")):  # one object per 5-minute interval
        key = (
            f"pre/AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/2026/11/26/"
            f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.my-loadbalancer.50dc6c495c0c9188_"
            f"20261126T{end}Z_10.0.0.{k}_abcd{k}.log.gz"
        )
        body = "\n".join(lines[k * 3000 : (k + 1) * 3000]) + "\n"
        s3.put_object(Bucket=name, Key=key, Body=gzip.compress(body.encode()))
    return name


def test_s3_prefix_through_collector(bucket, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(
        [
            "analyze",
            "--alb-logs",
            f"s3://{bucket}/pre",
            "--since",
            "2026-11-26T13:00:00Z",
            "--until",
            "2026-11-26T13:10:00Z",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "summary.json").read_text())
    assert data["figures"]["alb_entries"] == 6000
    assert data["figures"]["alb_elb_502"] == data["figures"]["alb_target_closed"] == 12
    assert data["causes"][0]["id"] == "keepalive-race"
    assert len(list((out / "alb-logs").rglob("*.log.gz"))) == 2  # kept next to the report


def test_two_balancers_under_one_prefix_are_refused_before_download(bucket, tmp_path, capsys):
    """A region's prefix holds every balancer's objects: analyze names them and downloads
    nothing, and [aws] load_balancer narrows the prefix to the one it names."""
    s3 = boto3.client("s3", region_name=REGION)
    lines = list(synth.alb_lines(2000, seed=5))
    for k, lb in enumerate(
        ("app.my-loadbalancer.50dc6c495c0c9188", "app.admin-alb.0123456789abcdef")
    ):
        key = (
            f"two/AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/2026/11/26/"
            f"{ACCOUNT}_elasticloadbalancing_{REGION}_{lb}_20261126T1305Z_10.0.0.{k}_efgh{k}.log.gz"
        )
        s3.put_object(
            Bucket=bucket, Key=key, Body=gzip.compress(("\n".join(lines) + "\n").encode())
        )
    window = ["--since", "2026-11-26T13:00:00Z", "--until", "2026-11-26T13:10:00Z"]
    out = tmp_path / "rep"
    src = f"s3://{bucket}/two"
    rc = main(["analyze", "--alb-logs", src, *window, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "the window's objects are of 2 load balancers (app.admin-alb.0123456789abcdef" in err
    assert '[aws] load_balancer = "admin-alb"' in err
    assert not list(out.rglob("*.gz"))  # nothing downloaded
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text('[aws]\nload_balancer = "my-loadbalancer"\n')
    rc = main(["analyze", "-c", str(cfg), "--alb-logs", src, *window, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "summary.json").read_text())
    assert data["figures"]["alb_entries"] == 2000
    (got,) = list((out / "alb-logs").rglob("*.log.gz"))
    assert "my-loadbalancer" in got.name
