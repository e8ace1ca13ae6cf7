"""`albprobe check` logic against moto in server mode: topologies built with boto3 over HTTP."""

from __future__ import annotations

import pytest

from core.errors import AlbprobeError
from probes.aws.checks import Expected, exit_code, run_checks
from probes.aws.gather import gather
from tests.aws.aws_topology import (
    build_prod,
    cross_zone_off_with_an_empty_zone,
    drain_shorter_than_graceful_timeout,
    drain_shorter_than_longest_request,
    listener_not_forwarding,
    listener_not_forwarding_named,
    nacl_denies_the_port,
    round_robin_with_long_requests,
    sg_with_wrong_port,
    stopped_instance,
    target_in_other_vpc,
    target_in_unserved_az,
)


def findings_for(clients, lb, **kw):
    return run_checks(gather(clients, lb, **kw), Expected())


def failing(findings):
    return {f.id for f in findings if f.status == "fail"}


def one(findings, check_id):
    got = [f for f in findings if f.id == check_id]
    assert len(got) == 1, got
    return got[0]


def test_healthy_topology_passes_every_check(clients, prod):
    fs = findings_for(clients, prod.lb_name)
    assert [(f.id, f.status, f.evidence) for f in fs if f.status != "pass"] == []
    assert exit_code(fs) == 0
    ev = one(fs, "sg.target_port_from_alb").evidence
    assert prod.api_sg in ev and prod.alb_sg in ev
    assert "10.0.11.0/24" not in one(fs, "nacl.target_inbound").evidence  # remote = ALB subnets
    assert one(fs, "alb.access_logs").evidence == f"access logs go to s3://{prod.bucket}/alb"


def test_lookup_by_arn_and_named_target_group(clients, prod):
    fs = findings_for(clients, prod.lb_arn, target_group="academy-api-tg")
    assert exit_code(fs) == 0


def test_security_group_without_the_port(clients):
    prod = build_prod(clients, api_sg_port=None)
    fs = findings_for(clients, prod.lb_name)
    assert failing(fs) == {"sg.target_port_from_alb"}
    f = one(fs, "sg.target_port_from_alb")
    assert f.remediation == (
        f"aws ec2 authorize-security-group-ingress --group-id {prod.api_sg} --protocol tcp "
        f"--port 8000 --source-group {prod.alb_sg}"
    )
    assert f.severity == "critical" and prod.instance in f.resource
    assert exit_code(fs) == 1


def test_security_group_with_wrong_port(clients):
    prod = sg_with_wrong_port(clients).prod
    fs = findings_for(clients, prod.lb_name)
    assert failing(fs) == {"sg.target_port_from_alb"}
    f = one(fs, "sg.target_port_from_alb")
    # the evidence names what is there; the resource column names the group
    assert f"What {prod.api_sg} admits: tcp/80 from {prod.alb_sg}" in f.evidence
    assert f.resource.startswith(prod.api_sg)


def test_target_in_another_vpc(clients):
    case = target_in_other_vpc(clients)
    prod, other, inst = case.prod, case.extra["vpc"], case.extra["instance"]
    fs = findings_for(clients, prod.lb_name)
    stray = [f for f in fs if f.id == "net.same_vpc" and inst in f.resource]
    assert len(stray) == 1 and stray[0].status == "fail"
    assert other in stray[0].evidence and prod.vpc in stray[0].evidence
    assert "no route from the ALB subnets" in stray[0].evidence
    assert stray[0].remediation.startswith(
        f"aws elbv2 deregister-targets --target-group-arn {prod.tg_arn} "
        f"--targets Id={inst},Port=8000  # "
    )
    # one cause, one fix: the route, security-group and NACL legs of the stray follow from it
    assert failing(fs) == {"net.same_vpc"}
    routes = [f for f in fs if f.id == "net.routes" and inst in f.resource]
    assert routes[0].status == "skip" and "follows from net.same_vpc" in routes[0].evidence
    # the healthy original target still passes
    assert [f.status for f in fs if f.id == "net.same_vpc" and prod.instance in f.resource] == [
        "pass"
    ]


def test_stopped_instance(clients):
    prod = stopped_instance(clients).prod
    fs = findings_for(clients, prod.lb_name)
    f = one(fs, "instance.running")
    assert f.status == "fail" and "state=stopped" in f.evidence
    assert f.remediation == f"aws ec2 start-instances --instance-ids {prod.instance}"
    # One cause, one finding with one fix: target health and fail-open follow from it.
    assert failing(fs) == {"instance.running"}
    assert [x.remediation for x in fs if "start-instances" in x.remediation] == [f.remediation]
    th = one(fs, "target.health")
    assert th.status == "skip" and "Target.InvalidState" in th.evidence
    assert "stopped or terminated" in th.evidence  # the reason in plain words
    assert "follows from instance.running" in th.evidence
    assert "follows from instance.running" in one(fs, "tg.fail_open").evidence
    assert one(fs, "instance.status_checks").status == "skip"


def test_listener_not_forwarding_to_the_group(clients):
    prod = listener_not_forwarding(clients).prod
    # Not attached to the ALB: the unattached group in its VPC is named, and the fix attaches it.
    fs = findings_for(clients, prod.lb_name)
    assert failing(fs) == {"tg.exists"}
    f = one(fs, "tg.exists")
    assert "academy-api-tg" in f.evidence and "attached to no load balancer" in f.evidence
    forward = (
        f"aws elbv2 modify-listener --listener-arn {prod.listener_arn} "
        f"--default-actions Type=forward,TargetGroupArn={prod.tg_arn}"
    )
    assert f.remediation == forward


def test_named_group_not_forwarded_to(clients):
    case = listener_not_forwarding_named(clients)
    prod = case.prod
    fs = findings_for(clients, prod.lb_name, target_group=case.target_group)
    assert failing(fs) == {"listener.forwards"}
    f = one(fs, "listener.forwards")
    assert "fixed-response 503" in f.evidence
    assert f.remediation == (
        f"aws elbv2 modify-listener --listener-arn {prod.listener_arn} "
        f"--default-actions Type=forward,TargetGroupArn={prod.tg_arn}"
    )
    # no PASS that its own evidence contradicts ("load balancers=none")
    t = one(fs, "tg.exists")
    assert t.status == "skip" and "load balancers=none: not attached to academy-alb" in t.evidence


def test_listener_rule_forwarding_counts(clients):
    prod = build_prod(clients, forward=False)
    clients.elbv2.create_rule(
        ListenerArn=prod.listener_arn,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": prod.tg_arn}],
    )
    f = one(findings_for(clients, prod.lb_name), "listener.forwards")
    assert f.status == "pass" and "rule 10 (path-pattern=/api/*)" in f.evidence


def test_nacl_that_blocks_the_port(clients):
    case = nacl_denies_the_port(clients)
    prod, acl = case.prod, case.extra["acl"]
    fs = findings_for(clients, prod.lb_name)
    assert failing(fs) == {"nacl.target_inbound"}
    f = one(fs, "nacl.target_inbound")
    assert f.resource.startswith(acl) and prod.instance in f.resource
    # the evidence names the denying rule: number, action, port and source
    assert "denied by rule 90 (deny tcp/8000 from 10.0.0.0/16)" in f.evidence
    # one allow entry per ALB subnet, each with its own free number below rule 90
    entry = (
        f"aws ec2 create-network-acl-entry --network-acl-id {acl} --ingress --rule-number {{}} "
        "--protocol tcp --port-range From=8000,To=8000 --cidr-block {} --rule-action allow"
    )
    assert f.remediation == (
        entry.format(89, "10.0.1.0/24") + " && " + entry.format(88, "10.0.2.0/24")
    )


def test_target_in_an_az_the_alb_does_not_serve(clients):
    case = target_in_unserved_az(clients)
    prod, inst, subnet = case.prod, case.extra["instance"], case.extra["subnet"]
    fs = findings_for(clients, prod.lb_name)
    f = [x for x in fs if x.id == "net.target_az" and inst in x.resource][0]
    assert f.status == "fail" and "us-east-1c" in f.evidence
    assert failing(fs) == {"net.target_az"}
    # the VPC's only subnet in that AZ (not public, like the ALB's own here) is filled in
    assert f.remediation == (
        f"aws elbv2 set-subnets --load-balancer-arn {prod.lb_arn} --subnets "
        f"{' '.join(prod.alb_subnets)} {subnet}"
    )


def test_idle_timeout_absent_in_moto_is_the_default_60(clients):
    prod = build_prod(clients, idle_timeout=None)
    topo = gather(clients, prod.lb_name)
    assert "idle_timeout.timeout_seconds" not in topo.load_balancer.attributes
    f = one(
        run_checks(topo, Expected(keepalive=5, worker_class="gthread", threads=4)),
        "alb.idle_timeout",
    )
    assert f.status == "fail" and "60s (AWS default, attribute not set)" in f.evidence
    f = one(
        run_checks(topo, Expected(keepalive=75, worker_class="gthread", threads=4)),
        "alb.idle_timeout",
    )
    assert f.status == "pass"


def test_access_logs_disabled_is_a_warning(clients):
    prod = build_prod(clients, access_logs=False)
    fs = findings_for(clients, prod.lb_name)
    assert one(fs, "alb.access_logs").status == "warn"
    assert exit_code(fs) == 0


def test_unknown_load_balancer_and_target_group(clients, prod):
    with pytest.raises(AlbprobeError) as e:
        gather(clients, "no-such-alb")
    assert e.value.exit_code == 2 and "'no-such-alb' not found in us-east-1" in e.value.one_line()
    with pytest.raises(AlbprobeError) as e:
        gather(clients, prod.lb_name, target_group="no-such-tg")
    assert e.value.exit_code == 2 and "target group 'no-such-tg' not found" in e.value.message


def test_drain_shorter_than_gunicorns_graceful_timeout(clients):
    case = drain_shorter_than_graceful_timeout(clients)
    fs = run_checks(gather(clients, case.prod.lb_name), Expected(**case.expected))
    assert failing(fs) == {"tg.deregistration_delay"}
    f = one(fs, "tg.deregistration_delay")
    assert "deregistration_delay.timeout_seconds=10s" in f.evidence
    assert "gunicorn's graceful timeout (30s)" in f.evidence and "502" in f.evidence
    assert f.remediation == (
        f"aws elbv2 modify-target-group-attributes --target-group-arn {case.prod.tg_arn} "
        "--attributes Key=deregistration_delay.timeout_seconds,Value=30"
    )


def test_drain_shorter_than_the_longest_request(clients):
    case = drain_shorter_than_longest_request(clients)
    f = one(
        run_checks(gather(clients, case.prod.lb_name), Expected(**case.expected)),
        "tg.deregistration_delay",
    )
    assert f.status == "fail" and "the longest expected request (120s)" in f.evidence
    assert f.remediation.endswith("Key=deregistration_delay.timeout_seconds,Value=120")
    # without a known longest request, 60 s covers gunicorn's default graceful timeout (30 s)
    assert one(findings_for(clients, case.prod.lb_name), "tg.deregistration_delay").status == "pass"


def test_algorithm_and_slow_start_are_reported(clients, prod):
    f = one(findings_for(clients, prod.lb_name), "tg.algorithm")
    assert f.status == "pass"
    assert "load_balancing.algorithm.type=round_robin" in f.evidence
    assert "slow_start.duration_seconds=0 (off)" in f.evidence


def test_round_robin_with_long_requests_suggests_least_outstanding(clients):
    case = round_robin_with_long_requests(clients)
    fs = run_checks(gather(clients, case.prod.lb_name), Expected(**case.expected))
    f = one(fs, "tg.algorithm")
    assert f.status == "warn" and "2 target(s)" in f.evidence and "20s long" in f.evidence
    assert f.remediation.endswith(
        "Key=load_balancing.algorithm.type,Value=least_outstanding_requests "
        "Key=slow_start.duration_seconds,Value=0"
    )
    assert failing(fs) == set()


def test_cross_zone_off_leaves_an_alb_zone_without_targets(clients):
    case = cross_zone_off_with_an_empty_zone(clients)
    fs = findings_for(clients, case.prod.lb_name)
    assert failing(fs) == {"tg.cross_zone"}
    f = one(fs, "tg.cross_zone")
    assert "targets per AZ: us-east-1a=1" in f.evidence and "us-east-1b has no target" in f.evidence
    assert f.remediation.endswith("Key=load_balancing.cross_zone.enabled,Value=true")
    # the group following the ALB, whose own cross-zone setting is always on, passes
    clients.elbv2.modify_target_group_attributes(
        TargetGroupArn=case.prod.tg_arn,
        Attributes=[
            {"Key": "load_balancing.cross_zone.enabled", "Value": "use_load_balancer_configuration"}
        ],
    )
    f = one(findings_for(clients, case.prod.lb_name), "tg.cross_zone")
    assert f.status == "pass" and "use_load_balancer_configuration" in f.evidence
