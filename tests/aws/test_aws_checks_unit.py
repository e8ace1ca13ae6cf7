"""The checks as pure functions over hand-built topologies: no AWS, no moto."""

from __future__ import annotations

from dataclasses import replace

import pytest

from probes.aws import netmath
from probes.aws.checks import CHECKS, SECTIONS, Expected, exit_code, parse_matcher, run_checks
from probes.aws.topology import (
    Action,
    HealthCheckSettings,
    Instance,
    Listener,
    LoadBalancer,
    NaclEntry,
    NetworkAcl,
    Permission,
    Route,
    RouteTable,
    SecurityGroup,
    Subnet,
    TargetGroup,
    TargetHealth,
    Topology,
    Vpc,
)

LB_ARN = "arn:aws:elasticloadbalancing:ap-northeast-2:111122223333:loadbalancer/app/academy-alb/50dc6c495c0c9188"
TG_ARN = "arn:aws:elasticloadbalancing:ap-northeast-2:111122223333:targetgroup/academy-api/73e2d6bc24d8a067"


def _open_acl(acl_id: str, vpc: str, subnets: tuple[str, ...], default: bool = True) -> NetworkAcl:
    return NetworkAcl(
        acl_id,
        vpc,
        default,
        subnets,
        (
            NaclEntry(100, False, "-1", "allow", "0.0.0.0/0"),
            NaclEntry(32767, False, "-1", "deny", "0.0.0.0/0"),
            NaclEntry(100, True, "-1", "allow", "0.0.0.0/0"),
            NaclEntry(32767, True, "-1", "deny", "0.0.0.0/0"),
        ),
    )


def healthy() -> Topology:
    lb = LoadBalancer(
        arn=LB_ARN,
        name="academy-alb",
        type="application",
        scheme="internet-facing",
        state="active",
        state_reason=None,
        vpc_id="vpc-a",
        dns_name="academy-alb-1.elb.amazonaws.com",
        subnet_ids=("subnet-pub-a", "subnet-pub-c"),
        availability_zones=("ap-northeast-2a", "ap-northeast-2c"),
        security_groups=("sg-alb",),
        attributes={
            "idle_timeout.timeout_seconds": "60",
            "access_logs.s3.enabled": "true",
            "access_logs.s3.bucket": "logs",
            "access_logs.s3.prefix": "alb",
        },
    )
    tg = TargetGroup(
        arn=TG_ARN,
        name="academy-api",
        protocol="HTTP",
        port=8000,
        vpc_id="vpc-a",
        target_type="instance",
        health_check=HealthCheckSettings(
            True, "HTTP", "traffic-port", "/health", "200", 30, 5, 5, 2
        ),
        load_balancer_arns=(LB_ARN,),
    )
    listener = Listener("arn:listener/80", 80, "HTTP", (Action("forward", (TG_ARN,)),))
    return Topology(
        region="ap-northeast-2",
        load_balancer=lb,
        listeners=(listener,),
        target_groups=(tg,),
        target_health={TG_ARN: (TargetHealth("i-api", 8000, "healthy"),)},
        security_groups={
            "sg-alb": SecurityGroup(
                "sg-alb",
                "alb",
                "vpc-a",
                ingress=(Permission("tcp", 80, 80, cidrs=("0.0.0.0/0",)),),
                egress=(Permission("-1", None, None, cidrs=("0.0.0.0/0",)),),
            ),
            "sg-api": SecurityGroup(
                "sg-api",
                "api",
                "vpc-a",
                ingress=(Permission("tcp", 8000, 8000, groups=("sg-alb",)),),
                egress=(Permission("-1", None, None, cidrs=("0.0.0.0/0",)),),
            ),
        },
        subnets={
            "subnet-pub-a": Subnet("subnet-pub-a", "vpc-a", "ap-northeast-2a", "10.0.1.0/24"),
            "subnet-pub-c": Subnet("subnet-pub-c", "vpc-a", "ap-northeast-2c", "10.0.2.0/24"),
            "subnet-049e711f41fdff71b": Subnet(
                "subnet-049e711f41fdff71b", "vpc-a", "ap-northeast-2a", "10.0.11.0/24"
            ),
        },
        vpcs={"vpc-a": Vpc("vpc-a", ("10.0.0.0/16",))},
        route_tables=(
            RouteTable("rtb-main", "vpc-a", True, (), (Route("10.0.0.0/16", "local", "active"),)),
        ),
        network_acls=(_open_acl("acl-default", "vpc-a", ()),),
        instances={
            "i-api": Instance(
                "i-api",
                "running",
                "vpc-a",
                "subnet-049e711f41fdff71b",
                "ap-northeast-2a",
                "10.0.11.20",
                ("sg-api",),
                "ok",
                "ok",
            )
        },
    )


def by_id(findings, check_id):
    return [f for f in findings if f.id == check_id]


def only(findings, check_id):
    got = by_id(findings, check_id)
    assert len(got) == 1, (check_id, got)
    return got[0]


def test_healthy_topology_passes_every_check():
    findings = run_checks(healthy(), Expected())
    assert {f.id for f in findings} == {c.id for c in CHECKS}
    bad = [(f.id, f.status, f.evidence) for f in findings if f.status != "pass"]
    assert not bad
    assert exit_code(findings) == 0


def test_findings_follow_the_runbook_order():
    findings = run_checks(healthy(), Expected())
    order = [SECTIONS.index(f.section) for f in findings]
    assert order == sorted(order)
    assert findings[0].id == "alb.state" and findings[-1].section == "instances"


def test_security_group_without_port_gives_exact_fix():
    t = healthy()
    sgs = dict(t.security_groups)
    sgs["sg-api"] = replace(
        sgs["sg-api"], ingress=(Permission("tcp", 22, 22, cidrs=("10.0.0.0/8",)),)
    )
    f = only(run_checks(replace(t, security_groups=sgs), Expected()), "sg.target_port_from_alb")
    assert f.status == "fail" and f.severity == "critical"
    assert f.remediation == (
        "aws ec2 authorize-security-group-ingress --group-id sg-api --protocol tcp --port 8000 "
        "--source-group sg-alb"
    )
    assert "10.0.1.0/24" in f.evidence and "10.0.2.0/24" in f.evidence


def test_security_group_by_alb_subnet_cidrs_passes_only_when_all_covered():
    t = healthy()
    sgs = dict(t.security_groups)
    sgs["sg-api"] = replace(
        sgs["sg-api"],
        ingress=(
            Permission("tcp", 8000, 8000, cidrs=("10.0.1.0/24",)),
            Permission("tcp", 7000, 9000, cidrs=("10.0.2.0/25", "10.0.2.128/25")),
        ),
    )
    f = only(run_checks(replace(t, security_groups=sgs), Expected()), "sg.target_port_from_alb")
    assert f.status == "pass", f.evidence
    sgs["sg-api"] = replace(
        sgs["sg-api"], ingress=(Permission("tcp", 8000, 8000, cidrs=("10.0.1.0/24",)),)
    )
    f = only(run_checks(replace(t, security_groups=sgs), Expected()), "sg.target_port_from_alb")
    assert (
        f.status == "fail"
        and "10.0.2.0/24" in f.evidence
        and "10.0.1.0/24" not in f.evidence.split("covered:")[1].split(")")[0]
    )


def test_health_check_port_differs_from_traffic_port_is_checked_in_the_sg():
    t = healthy()
    tg = replace(
        t.target_groups[0], health_check=replace(t.target_groups[0].health_check, port="8001")
    )
    fs = run_checks(replace(t, target_groups=(tg,)), Expected(health_check_port=8001))
    sg = by_id(fs, "sg.target_port_from_alb")
    assert [f.status for f in sg] == ["pass", "fail"]
    assert "--port 8001 --source-group sg-alb" in sg[1].remediation


def test_alb_egress_restricted():
    t = healthy()
    sgs = dict(t.security_groups)
    sgs["sg-alb"] = replace(
        sgs["sg-alb"], egress=(Permission("tcp", 443, 443, cidrs=("0.0.0.0/0",)),)
    )
    f = only(run_checks(replace(t, security_groups=sgs), Expected()), "sg.alb_egress_to_target")
    assert f.status == "fail"
    assert "authorize-security-group-egress --group-id sg-alb" in f.remediation
    assert "UserIdGroupPairs=[{GroupId=sg-api}]" in f.remediation


@pytest.mark.parametrize(
    ("state", "reason", "status"),
    [
        ("healthy", None, "pass"),
        ("initial", "Elb.InitialHealthChecking", "warn"),
        ("unhealthy", "Target.Timeout", "fail"),
        ("unused", "Target.InvalidState", "fail"),
        ("draining", "Target.DeregistrationInProgress", "warn"),
    ],
)
def test_target_health_states(state, reason, status):
    t = healthy()
    t = replace(t, target_health={TG_ARN: (TargetHealth("i-api", 8000, state, reason),)})
    f = only(run_checks(t, Expected()), "target.health")
    assert f.status == status


def test_fail_open_when_every_target_is_unhealthy():
    t = healthy()
    ths = (
        TargetHealth("i-api", 8000, "unhealthy", "Target.Timeout"),
        TargetHealth("i-api2", 8000, "unhealthy", "Target.FailedHealthChecks"),
    )
    f = only(run_checks(replace(t, target_health={TG_ARN: ths}), Expected()), "tg.fail_open")
    assert f.status == "fail" and "fails open" in f.evidence
    ths = (ths[0], TargetHealth("i-api2", 8000, "healthy"))
    f = only(run_checks(replace(t, target_health={TG_ARN: ths}), Expected()), "tg.fail_open")
    assert f.status == "pass" and "1 of 2 healthy" in f.evidence


def test_no_registered_targets_means_503_and_later_sections_skip():
    t = replace(healthy(), target_health={TG_ARN: ()})
    fs = run_checks(t, Expected())
    f = only(fs, "tg.targets_registered")
    assert f.status == "fail" and "503" in f.evidence
    assert only(fs, "sg.target_port_from_alb").status == "skip"
    assert exit_code(fs) == 1


def test_response_code_mismatch_gives_allowed_hosts_hint():
    t = healthy()
    th = TargetHealth(
        "i-api",
        8000,
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [400]",
    )
    f = only(
        run_checks(replace(t, target_health={TG_ARN: (th,)}), Expected()),
        "target.health.allowed_hosts",
    )
    assert f.status == "fail"
    assert "Host: 10.0.11.20:8000" in f.evidence and "ALLOWED_HOSTS" in f.evidence
    assert "curl -i -H 'Host: 10.0.11.20:8000' http://10.0.11.20:8000/health" in f.remediation


def test_keepalive_race_only_for_workers_that_keep_connections():
    t = healthy()
    f = only(
        run_checks(t, Expected(keepalive=2, worker_class="gthread", threads=4)), "alb.idle_timeout"
    )
    assert f.status == "fail" and "60s" in f.evidence
    assert "--keep-alive 65" in f.remediation
    assert "modify-load-balancer-attributes" not in f.remediation  # not down to 1 s
    f = only(run_checks(t, Expected(keepalive=30, worker_class="gthread")), "alb.idle_timeout")
    assert "Key=idle_timeout.timeout_seconds,Value=29" in f.remediation
    assert only(run_checks(t, Expected(keepalive=2)), "alb.idle_timeout").status == "pass"
    assert (
        only(
            run_checks(t, Expected(keepalive=75, worker_class="gthread")), "alb.idle_timeout"
        ).status
        == "pass"
    )


def test_absent_idle_timeout_is_the_aws_default_60():
    t = healthy()
    lb = replace(t.load_balancer, attributes={})
    f = only(
        run_checks(replace(t, load_balancer=lb), Expected(keepalive=30, worker_class="gevent")),
        "alb.idle_timeout",
    )
    assert f.status == "fail" and "60s (AWS default, attribute not set)" in f.evidence


def test_health_check_settings_against_expected():
    t = healthy()
    hc = HealthCheckSettings(True, "HTTP", "80", "/", "200-499", 10, 5, 3, 2)
    tg = replace(t.target_groups[0], health_check=hc)
    fs = run_checks(replace(t, target_groups=(tg,)), Expected())
    assert only(fs, "tg.health_check.path").status == "fail"
    assert only(fs, "tg.health_check.path").remediation.endswith("--health-check-path /health")
    assert only(fs, "tg.health_check.port").remediation.endswith("--health-check-port traffic-port")
    m = only(fs, "tg.health_check.matcher")
    assert m.status == "warn" and "400 DisallowedHost" in m.evidence
    assert only(fs, "tg.health_check.interval").status == "warn"
    assert only(fs, "tg.health_check.healthy_threshold").status == "warn"
    assert only(fs, "tg.health_check.timeout").status == "pass"
    hc = replace(hc, matcher="301")
    fs = run_checks(replace(t, target_groups=(replace(tg, health_check=hc),)), Expected())
    assert only(fs, "tg.health_check.matcher").status == "fail"


def test_listener_not_forwarding():
    t = healthy()
    lst = Listener(
        "arn:listener/80",
        80,
        "HTTP",
        (Action("redirect", (), "redirect HTTP_301 to HTTPS://#{host}:443/#{path}"),),
    )
    f = only(run_checks(replace(t, listeners=(lst,)), Expected()), "listener.forwards")
    assert f.status == "fail" and "redirect" in f.evidence
    assert f.remediation == (
        f"aws elbv2 modify-listener --listener-arn arn:listener/80 "
        f"--default-actions Type=forward,TargetGroupArn={TG_ARN}"
    )


def test_target_az_not_enabled_and_other_vpc():
    t = healthy()
    inst = replace(t.instances["i-api"], availability_zone="ap-northeast-2b")
    f = only(run_checks(replace(t, instances={"i-api": inst}), Expected()), "net.target_az")
    assert f.status == "fail" and "set-subnets" in f.remediation
    inst = replace(t.instances["i-api"], vpc_id="vpc-b", private_ip="172.31.0.5")
    fs = run_checks(replace(t, instances={"i-api": inst}), Expected())
    f = only(fs, "net.same_vpc")
    assert f.status == "fail" and "vpc-b" in f.evidence and "no route" in f.evidence
    # Peered and routed from every ALB subnet: a warning, not a failure.
    rt = RouteTable(
        "rtb-main",
        "vpc-a",
        True,
        (),
        (Route("10.0.0.0/16", "local", "active"), Route("172.31.0.0/16", "pcx-1", "active")),
    )
    f = only(
        run_checks(replace(t, instances={"i-api": inst}, route_tables=(rt,)), Expected()),
        "net.same_vpc",
    )
    assert f.status == "warn" and "pcx-1" in f.evidence


def test_blackhole_route_fails():
    t = healthy()
    rt = RouteTable(
        "rtb-pub",
        "vpc-a",
        False,
        ("subnet-pub-a",),
        (Route("10.0.0.0/16", "local", "active"), Route("10.0.11.0/24", "eni-x", "blackhole")),
    )
    f = only(run_checks(replace(t, route_tables=(*t.route_tables, rt)), Expected()), "net.routes")
    assert f.status == "fail" and "blackhole" in f.evidence and "subnet-pub-a" in f.evidence


def test_nacl_deny_before_allow_blocks_the_port():
    t = healthy()
    acl = NetworkAcl(
        "acl-api",
        "vpc-a",
        False,
        ("subnet-049e711f41fdff71b",),
        (
            NaclEntry(90, False, "6", "deny", "10.0.0.0/16", 8000, 8000),
            NaclEntry(100, False, "-1", "allow", "0.0.0.0/0"),
            NaclEntry(32767, False, "-1", "deny", "0.0.0.0/0"),
            NaclEntry(100, True, "-1", "allow", "0.0.0.0/0"),
            NaclEntry(32767, True, "-1", "deny", "0.0.0.0/0"),
        ),
    )
    fs = run_checks(replace(t, network_acls=(*t.network_acls, acl)), Expected())
    f = only(fs, "nacl.target_inbound")
    assert f.status == "fail" and "denied by rule 90" in f.evidence
    assert (
        "aws ec2 create-network-acl-entry --network-acl-id acl-api --ingress --rule-number 89 "
        "--protocol tcp --port-range From=8000,To=8000 --cidr-block 10.0.1.0/24 --rule-action allow"
    ) in f.remediation
    assert only(fs, "nacl.target_outbound_ephemeral").status == "pass"
    assert only(fs, "nacl.alb_outbound").status == "pass"


def test_nacl_outbound_without_ephemeral_ports_blocks_replies():
    t = healthy()
    acl = NetworkAcl(
        "acl-api",
        "vpc-a",
        False,
        ("subnet-049e711f41fdff71b",),
        (
            NaclEntry(100, False, "-1", "allow", "0.0.0.0/0"),
            NaclEntry(100, True, "6", "allow", "0.0.0.0/0", 443, 443),
        ),
    )
    f = only(
        run_checks(replace(t, network_acls=(*t.network_acls, acl)), Expected()),
        "nacl.target_outbound_ephemeral",
    )
    assert f.status == "fail" and "1024-65535" in f.evidence and "32767" in f.evidence


def test_stopped_and_missing_instances():
    t = healthy()
    inst = replace(t.instances["i-api"], state="stopped", system_status=None, instance_status=None)
    fs = run_checks(replace(t, instances={"i-api": inst}), Expected())
    f = only(fs, "instance.running")
    assert f.status == "fail" and f.remediation == "aws ec2 start-instances --instance-ids i-api"
    assert only(fs, "instance.status_checks").status == "skip"
    f = only(run_checks(replace(t, instances={}), Expected()), "instance.running")
    assert f.status == "fail" and "not found" in f.evidence


def test_impaired_status_check():
    t = healthy()
    inst = replace(t.instances["i-api"], instance_status="impaired")
    f = only(
        run_checks(replace(t, instances={"i-api": inst}), Expected()), "instance.status_checks"
    )
    assert f.status == "fail"


def test_a_crashing_check_is_an_error_not_a_crash():
    t = healthy()
    tg = replace(
        t.target_groups[0], health_check=replace(t.target_groups[0].health_check, port="not-a-port")
    )
    fs = run_checks(replace(t, target_groups=(tg,)), Expected())
    assert "error" in {f.status for f in fs}
    assert exit_code([f for f in fs if f.status != "fail"]) == 2


def test_exit_codes():
    fs = run_checks(healthy(), Expected())
    assert exit_code(fs) == 0
    warn = [replace(fs[0], status="warn"), *fs[1:]]
    assert exit_code(warn) == 0
    assert exit_code([replace(fs[0], status="error"), replace(fs[1], status="fail")]) == 1


# --- netmath ------------------------------------------------------------------------------------


def test_parse_matcher():
    assert parse_matcher("200") == {200}
    assert parse_matcher("200-202,301") == {200, 201, 202, 301}


def test_nacl_partial_overlap_is_exact():
    acl = NetworkAcl(
        "acl",
        "v",
        False,
        (),
        (
            NaclEntry(10, False, "6", "allow", "10.0.1.0/25", 8000, 8000),
            NaclEntry(20, False, "6", "deny", "10.0.0.0/16", 0, 65535),
            NaclEntry(30, False, "-1", "allow", "0.0.0.0/0"),
        ),
    )
    v = netmath.evaluate_nacl(acl, egress=False, cidr="10.0.1.0/24", ports=(8000, 8000))
    assert not v.allowed and v.partial and v.allowed_by == (10,) and v.denied_by == (20,)
    v = netmath.evaluate_nacl(acl, egress=False, cidr="10.0.1.0/25", ports=(8000, 8000))
    assert v.allowed and v.allowed_by == (10,)
    v = netmath.evaluate_nacl(acl, egress=False, cidr="192.168.0.0/24", ports=(1024, 65535))
    assert v.allowed and v.allowed_by == (30,)
    # a port range split across rules
    acl2 = NetworkAcl(
        "acl2",
        "v",
        False,
        (),
        (
            NaclEntry(10, True, "6", "allow", "0.0.0.0/0", 1024, 30000),
            NaclEntry(20, True, "6", "allow", "0.0.0.0/0", 30001, 65535),
        ),
    )
    assert netmath.evaluate_nacl(acl2, egress=True, cidr="10.0.0.0/8", ports=(1024, 65535)).allowed
    v = netmath.evaluate_nacl(acl2, egress=True, cidr="10.0.0.0/8", ports=(1000, 65535))
    assert not v.allowed and v.denied_by == (32767,)


def test_route_longest_prefix():
    rt = RouteTable(
        "r",
        "v",
        True,
        (),
        (
            Route("0.0.0.0/0", "igw-1", "active"),
            Route("10.0.0.0/16", "local", "active"),
            Route("10.0.11.0/24", "eni-1", "blackhole"),
        ),
    )
    assert netmath.route_for(rt, "10.0.11.5/32").target == "eni-1"
    assert netmath.route_for(rt, "10.0.1.0/24").target == "local"
    assert netmath.route_for(rt, "8.8.8.8/32").target == "igw-1"
    assert netmath.free_rule_number_below(_open_acl("a", "v", ()), egress=False, below=100) == 99
    # numbers planned for other fixes are taken too; none free below: None, not a clash
    acl = _open_acl("a", "v", ())
    assert netmath.free_rule_number_below(acl, egress=False, below=100, taken={99}) == 98
    assert netmath.free_rule_number_below(acl, egress=False, below=2, taken={1}) is None


def test_a_fix_value_with_shell_characters_is_quoted():
    f = only(
        run_checks(healthy(), Expected(health_check_path="/health?deep=1")), "tg.health_check.path"
    )
    assert f.remediation.endswith("--health-check-path '/health?deep=1'")


def test_docs_list_every_check():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "aws.md").read_text(encoding="utf-8")
    for c in CHECKS:
        short = c.id.rsplit(".", 1)[-1]
        assert f"`{c.id}`" in doc or f"`.{short}`" in doc, c.id


def test_a_shared_fix_is_listed_once():
    from probes.aws.checks import Finding
    from probes.aws.report import fixes

    same = "aws ec2 start-instances --instance-ids i-api"
    fs = [
        Finding("a", "targets", "A", "high", "fail", "i-api", "x", same),
        Finding("b", "instances", "B", "high", "fail", "i-api", "y", same),
        Finding("c", "instances", "C", "low", "pass", "i-api", "z", "aws ec2 never"),
    ]
    assert [f.id for f in fixes(fs)] == ["a"]
