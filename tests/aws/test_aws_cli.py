"""`albprobe check` end to end through the CLI entry point: output, JSON, exit codes 0/1/2."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from albprobe.cli import main
from tests.aws.aws_topology import REGION, build_prod


def run(capsys, *args):
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_healthy_exit_0(capsys, clients, prod, moto):
    code, out, err = run(capsys, "-l", prod.lb_name, "--region", REGION, "--endpoint-url", moto)
    assert code == 0, out + err
    assert f"albprobe check: academy-alb (us-east-1) at {moto}" in out  # not AWS's endpoint
    assert "FAIL" not in out and "-> exit code 0" in out
    # the runbook's order: ALB first, instances last
    assert out.index("alb.state") < out.index("listener.forwards") < out.index("tg.port")
    assert out.index("target.health") < out.index("sg.target_port_from_alb") < out.index("nacl.")
    assert out.index("nacl.") < out.index("instance.running")


def test_failed_check_exit_1_with_copy_pasteable_fix(capsys, clients, moto):
    prod = build_prod(clients, api_sg_port=None)
    code, out, _ = run(capsys, "-l", prod.lb_name, "--region", REGION, "--endpoint-url", moto)
    assert code == 1
    fix = (
        f"aws ec2 authorize-security-group-ingress --group-id {prod.api_sg} --protocol tcp "
        f"--port 8000 --source-group {prod.alb_sg}"
    )
    assert fix in [line.strip() for line in out.splitlines()]  # one unbroken, pasteable line
    assert "-> exit code 1" in out


def test_json_output(capsys, clients, moto):
    prod = build_prod(clients, api_sg_port=None)
    code, out, _ = run(capsys, "-l", prod.lb_arn, "--endpoint-url", moto, "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["exit_code"] == 1 and doc["region"] == REGION  # region taken from the ARN
    assert doc["load_balancer_arn"] == prod.lb_arn
    assert doc["summary"]["fail"] == 1
    (f,) = [f for f in doc["findings"] if f["status"] == "fail"]
    assert f["id"] == "sg.target_port_from_alb" and f["severity"] == "critical"
    assert f["remediation"].endswith(f"--source-group {prod.alb_sg}")
    assert set(f) == {
        "id",
        "section",
        "title",
        "severity",
        "status",
        "resource",
        "evidence",
        "remediation",
    }


def test_aws_endpoint_url_from_the_environment(capsys, clients, prod, moto, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    code, out, err = run(capsys, "-l", prod.lb_name, "--region", REGION)
    assert code == 0, err
    assert f"(us-east-1) at {moto}" in out


def test_a_fix_two_findings_share_is_printed_once(capsys, clients, moto):
    """One cause, one fix: the report lists a shared command once."""
    prod = build_prod(clients, api_sg_port=None)
    clients.ec2.stop_instances(InstanceIds=[prod.instance])
    code, out, _ = run(capsys, "-l", prod.lb_name, "--region", REGION, "--endpoint-url", moto)
    assert code == 1
    start = f"aws ec2 start-instances --instance-ids {prod.instance}"
    assert [line.strip() for line in out.splitlines()].count(start) == 1


def test_config_file_supplies_everything(capsys, clients, prod, moto, tmp_path):
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text(
        f"""
[aws]
region = "{REGION}"
endpoint_url = "{moto}"
load_balancer = "{prod.lb_name}"
target_group = "academy-api-tg"

[aws.health_check]
path = "/healthz"

[capacity]
worker_class = "gthread"
threads = 4
keepalive = "5s"
"""
    )
    code, out, _ = run(capsys, "-c", str(cfg), "--json")
    assert code == 1
    failed = {f["id"] for f in json.loads(out)["findings"] if f["status"] == "fail"}
    assert failed == {"tg.health_check.path", "alb.idle_timeout"}
    # CLI options override the config
    code, out, _ = run(
        capsys, "-c", str(cfg), "--json", "--health-check-path", "/health", "--keepalive", "75"
    )
    assert code == 0


def test_unknown_load_balancer_exit_2_one_line(capsys, clients, prod, moto):
    code, out, err = run(capsys, "-l", "nope", "--region", REGION, "--endpoint-url", moto)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("albprobe: error: load balancer 'nope' not found in us-east-1")
    assert "describe-load-balancers" in err


def test_missing_load_balancer_and_bad_options(capsys, moto, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./albprobe.toml
    code, _, err = run(capsys, "--region", REGION)
    assert code == 2 and "no load balancer given" in err and err.count("\n") == 1
    code, _, err = run(capsys, "-l", "x", "--port", "70000")
    assert code == 2 and "--port" in err
    code, _, err = run(capsys, "-l", "x", "--matcher", "two hundred", "--region", REGION)
    assert code == 2 and "--matcher" in err


def test_no_credentials_exit_2(capsys, moto, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never reach out to IMDS
    for key in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(key, raising=False)
    code, out, err = run(capsys, "-l", "academy-alb", "--region", REGION, "--endpoint-url", moto)
    assert code == 2 and out == ""
    assert err.startswith("albprobe: error: no usable AWS credentials") and err.count("\n") == 1


def test_unknown_profile_exit_2(capsys, moto):
    code, _, err = run(capsys, "-l", "academy-alb", "--profile", "nope", "--region", REGION)
    assert code == 2 and "AWS profile 'nope' not found" in err


class FakeAws(BaseHTTPRequestHandler):
    """An AWS Query-protocol endpoint that answers every call with one error."""

    status = 400
    code = "Throttling"
    message = "Rate exceeded"
    hits: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.hits.append(body)
        xml = (
            '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
            f"<Error><Type>Sender</Type><Code>{self.code}</Code><Message>{self.message}</Message>"
            "</Error><RequestId>r-1</RequestId></ErrorResponse>"
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(xml)))
        self.end_headers()
        self.wfile.write(xml)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeAws.hits = []
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_throttling_after_retries_exit_2(capsys, fake_aws, tmp_path, monkeypatch):
    _, url = fake_aws
    FakeAws.status, FakeAws.code, FakeAws.message = 400, "Throttling", "Rate exceeded"
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text("[aws]\nmax_attempts = 2\n")
    code, out, err = run(
        capsys, "-c", str(cfg), "-l", "academy-alb", "--region", REGION, "--endpoint-url", url
    )
    assert code == 2 and out == ""
    assert len(FakeAws.hits) == 2  # the adaptive retry really retried, then gave up
    assert "Action=DescribeLoadBalancers" in FakeAws.hits[0]
    assert err.startswith(
        "albprobe: error: AWS throttled elasticloadbalancing:DescribeLoadBalancers (Throttling) "
        "after 2 attempt(s)"
    )
    assert err.count("\n") == 1


def test_access_denied_exit_2_names_the_action(capsys, fake_aws):
    _, url = fake_aws
    FakeAws.status, FakeAws.code = 403, "AccessDenied"
    FakeAws.message = (
        "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: "
        "elasticloadbalancing:DescribeLoadBalancers"
    )
    code, out, err = run(capsys, "-l", "academy-alb", "--region", REGION, "--endpoint-url", url)
    assert code == 2 and len(FakeAws.hits) == 1
    assert err.startswith(
        "albprobe: error: AWS denied elasticloadbalancing:DescribeLoadBalancers (AccessDenied)"
    )
    assert "docs/iam-policy.json" in err and err.count("\n") == 1


def test_wide_terminal_gets_the_table(capsys, clients, moto, monkeypatch):
    prod = build_prod(clients, api_sg_port=None)
    monkeypatch.setenv("COLUMNS", "160")
    code, out, _ = run(capsys, "-l", prod.lb_name, "--region", REGION, "--endpoint-url", moto)
    assert code == 1
    assert "┃ status" in out and "SECURITY GROUPS" in out
    fix = f"--port 8000 --source-group {prod.alb_sg}"
    assert any(
        line.strip().endswith(fix) and line.strip().startswith("aws ec2")
        for line in out.splitlines()
    )
