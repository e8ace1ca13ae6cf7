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
