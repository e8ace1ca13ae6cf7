"""botocore Stubber for what moto cannot produce: unhealthy targets with each reason code,
AccessDenied and throttling. The ELBv2 responses are recorded from moto (so they are real-shaped)
and replayed through a Stubber with only the target health changed; EC2 still goes to moto."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from core.errors import AlbprobeError
from probes.aws.checks import Expected, run_checks
from probes.aws.gather import MAX_PAGES, gather, listener_rules
from probes.aws.reasons import REASONS, explain
from tests.aws.aws_topology import REGION


def _clean(resp: dict) -> dict:
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def record_elbv2(clients, prod) -> list[tuple[str, dict]]:
    """The ELBv2 responses gather() needs, in its call order, read from moto."""
    e = clients.elbv2
    out = [
        ("describe_load_balancers", e.describe_load_balancers(Names=[prod.lb_name])),
        (
            "describe_load_balancer_attributes",
            e.describe_load_balancer_attributes(LoadBalancerArn=prod.lb_arn),
        ),
    ]
    listeners = e.describe_listeners(LoadBalancerArn=prod.lb_arn)
    out.append(("describe_listeners", listeners))
    for lst in listeners["Listeners"]:
        out.append(("describe_rules", e.describe_rules(ListenerArn=lst["ListenerArn"])))
    out.append(("describe_target_groups", e.describe_target_groups(LoadBalancerArn=prod.lb_arn)))
    out.append(
        (
            "describe_target_group_attributes",
            e.describe_target_group_attributes(TargetGroupArn=prod.tg_arn),
        )
    )
    out.append(("describe_target_health", e.describe_target_health(TargetGroupArn=prod.tg_arn)))
    return [(op, _clean(r)) for op, r in out]


def stubbed(service: str) -> tuple[object, Stubber]:
    client = boto3.client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    return client, Stubber(client)


def replay(clients, recorded, *, health: dict | None = None, error_at: str | None = None, **err):
    """Swap in a stubbed ELBv2 client replaying ``recorded`` (one op replaced or failing)."""
    client, stub = stubbed("elbv2")
    for op, resp in recorded:
        if op == error_at:
            stub.add_client_error(op, **err)
            break
        if op == "describe_target_health" and health is not None:
            resp = health
        stub.add_response(op, resp)
    stub.activate()
    clients.__dict__["elbv2"] = client  # AwsClients.elbv2 is a cached_property
    return stub


CASES = [
    ("unhealthy", "Target.Timeout", "Request timed out", "fail"),
    (
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [400]",
        "fail",
    ),
    ("unhealthy", "Target.FailedHealthChecks", "Health checks failed", "fail"),
    ("unhealthy", "Elb.InternalError", "Health checks failed due to an internal error", "fail"),
    ("initial", "Elb.RegistrationInProgress", "Target registration is in progress", "warn"),
    ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress", "warn"),
    ("unused", "Target.NotRegistered", "Target is not registered to the target group", "fail"),
    ("unused", "Target.NotInUse", "Target group is not configured to receive traffic", "fail"),
    ("unused", "Target.InvalidState", "Target is in the stopped state", "fail"),
    ("unused", "Target.IpUnusable", "Target IP address is unusable", "fail"),
    ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress", "warn"),
    ("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled", "warn"),
]


def test_every_reason_code_has_plain_words():
    assert {reason for _, reason, _, _ in CASES} == set(REASONS)


@pytest.mark.parametrize(("state", "reason", "description", "status"), CASES)
def test_unhealthy_target_reasons(clients, prod, state, reason, description, status):
    recorded = record_elbv2(clients, prod)
    health = {
        "TargetHealthDescriptions": [
            {
                "Target": {"Id": prod.instance, "Port": 8000},
                "HealthCheckPort": "8000",
                "TargetHealth": {"State": state, "Reason": reason, "Description": description},
            }
        ]
    }
    stub = replay(clients, recorded, health=health)
    fs = run_checks(gather(clients, prod.lb_name), Expected())
    stub.assert_no_pending_responses()
    th = next(f for f in fs if f.id == "target.health")
    assert th.status == status
    assert f"state={state} reason={reason} ({explain(reason)})" in th.evidence
    assert description in th.evidence
    assert th.remediation  # every non-healthy reason says what to do next
    fail_open = next(f for f in fs if f.id == "tg.fail_open")
    assert fail_open.status == "fail"  # the only target is not healthy
    if state == "unhealthy":
        assert "fails open" in fail_open.evidence
    hosts = next(f for f in fs if f.id == "target.health.allowed_hosts")
    if reason == "Target.ResponseCodeMismatch":
        assert hosts.status == "fail"
        assert f"Host: {prod.instance_ip}:8000" in hosts.evidence
        assert "ALLOWED_HOSTS" in hosts.evidence and "400" in hosts.evidence
    else:
        assert hosts.status == "pass"
    if reason == "Target.NotRegistered":
        assert th.remediation == (
            f"aws elbv2 register-targets --target-group-arn {prod.tg_arn} "
            f"--targets Id={prod.instance},Port=8000"
        )
    if reason == "Target.Timeout":
        assert "docker logs --since 15m academy-api" in th.remediation


def test_fail_open_with_two_unhealthy_targets(clients, prod):
    recorded = record_elbv2(clients, prod)
    health = {
        "TargetHealthDescriptions": [
            {
                "Target": {"Id": prod.instance, "Port": 8000},
                "TargetHealth": {"State": "unhealthy", "Reason": "Target.Timeout"},
            },
            {
                "Target": {"Id": "i-0123456789abcdef0", "Port": 8000},
                "TargetHealth": {"State": "unhealthy", "Reason": "Target.FailedHealthChecks"},
            },
        ]
    }
    replay(clients, recorded, health=health)
    fs = run_checks(gather(clients, prod.lb_name), Expected())
    f = next(f for f in fs if f.id == "tg.fail_open")
    assert f.status == "fail" and "every target is unhealthy" in f.evidence
    missing = [x for x in fs if x.id == "instance.running" and "i-0123456789abcdef0" in x.resource]
    assert missing[0].status == "fail" and "not found" in missing[0].evidence


def test_access_denied_names_the_action(clients, prod):
    recorded = record_elbv2(clients, prod)
    replay(
        clients,
        recorded,
        error_at="describe_load_balancers",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:iam::123456789012:user/ops is not authorized to perform: "
        "elasticloadbalancing:DescribeLoadBalancers because no identity-based policy allows it",
        http_status_code=403,
    )
    with pytest.raises(AlbprobeError) as e:
        gather(clients, prod.lb_name)
    assert e.value.exit_code == 2
    line = e.value.one_line()
    assert "\n" not in line
    assert line.startswith("AWS denied elasticloadbalancing:DescribeLoadBalancers (AccessDenied)")
    assert "docs/iam-policy.json" in line


def test_access_denied_without_action_in_message_is_named_from_the_call(clients, prod):
    """EC2 says UnauthorizedOperation with an encoded message: the action comes from the call."""
    recorded = record_elbv2(clients, prod)
    replay(clients, recorded)
    ec2, stub = stubbed("ec2")
    stub.add_client_error(
        "describe_instances",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation. Encoded "
        "authorization failure message: AbCdEf",
        http_status_code=403,
    )
    stub.activate()
    clients.__dict__["ec2"] = ec2
    with pytest.raises(AlbprobeError) as e:
        gather(clients, prod.lb_name)
    assert "AWS denied ec2:DescribeInstances (UnauthorizedOperation)" in e.value.message


def test_throttling_is_exit_2_with_the_call(clients, prod):
    recorded = record_elbv2(clients, prod)
    replay(
        clients,
        recorded,
        error_at="describe_target_health",
        service_error_code="Throttling",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    with pytest.raises(AlbprobeError) as e:
        gather(clients, prod.lb_name)
    assert e.value.exit_code == 2
    assert "AWS throttled elasticloadbalancing:DescribeTargetHealth (Throttling)" in e.value.message


def test_expired_credentials(clients, prod):
    replay(
        clients,
        record_elbv2(clients, prod),
        error_at="describe_load_balancers",
        service_error_code="ExpiredToken",
        service_message="The security token included in the request is expired",
        http_status_code=403,
    )
    with pytest.raises(AlbprobeError) as e:
        gather(clients, prod.lb_name)
    assert "AWS rejected the credentials (ExpiredToken)" in e.value.message
    assert "aws sso login" in (e.value.hint or "")


LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb/1/2"


def _rule_page(first: int, n: int, marker: str | None) -> dict:
    page: dict = {
        "Rules": [
            {"RuleArn": f"{LISTENER}/rule-{i}", "Priority": str(i), "IsDefault": False}
            for i in range(first, first + n)
        ]
    }
    if marker:
        page["NextMarker"] = marker
    return page


def test_describe_rules_follows_every_marker(clients):
    """Rules come through botocore's paginator: each page's NextMarker is sent as the next Marker."""
    client, stub = stubbed("elbv2")
    stub.add_response("describe_rules", _rule_page(1, 2, "m1"), {"ListenerArn": LISTENER})
    stub.add_response(
        "describe_rules", _rule_page(3, 2, "m2"), {"ListenerArn": LISTENER, "Marker": "m1"}
    )
    stub.add_response(
        "describe_rules", _rule_page(5, 1, None), {"ListenerArn": LISTENER, "Marker": "m2"}
    )
    stub.activate()
    clients.__dict__["elbv2"] = client
    rules = listener_rules(clients, LISTENER)
    stub.assert_no_pending_responses()
    assert [r["Priority"] for r in rules] == ["1", "2", "3", "4", "5"]


def test_describe_rules_never_stops_silently_at_the_page_bound(clients):
    """Past MAX_PAGES pages the read fails loudly instead of returning a truncated rule list."""
    client, stub = stubbed("elbv2")
    for i in range(MAX_PAGES + 1):
        params = {"ListenerArn": LISTENER, **({"Marker": f"m{i}"} if i else {})}
        stub.add_response("describe_rules", _rule_page(i + 1, 1, f"m{i + 1}"), params)
    stub.activate()
    clients.__dict__["elbv2"] = client
    with pytest.raises(AlbprobeError, match=f"more than {MAX_PAGES} pages"):
        listener_rules(clients, LISTENER)
