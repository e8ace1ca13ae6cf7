"""`albprobe check` logic against moto in server mode: topologies built with boto3 over HTTP."""

from __future__ import annotations

import pytest

from core.errors import AlbprobeError
from probes.aws.checks import Expected, exit_code, run_checks
from probes.aws.gather import gather
from tests.aws.aws_topology import build_prod


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
    prod = build_prod(clients, api_sg_port=80)
    assert failing(findings_for(clients, prod.lb_name)) == {"sg.target_port_from_alb"}


def test_target_in_another_vpc(clients, prod):
    ec2 = clients.ec2
    other = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(
        VpcId=other, CidrBlock="172.31.1.0/24", AvailabilityZone="us-east-1a"
    )["Subnet"]["SubnetId"]
    inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)[
        "Instances"
    ][0]["InstanceId"]
    clients.elbv2.register_targets(TargetGroupArn=prod.tg_arn, Targets=[{"Id": inst, "Port": 8000}])
    fs = findings_for(clients, prod.lb_name)
    stray = [f for f in fs if f.id == "net.same_vpc" and inst in f.resource]
    assert len(stray) == 1 and stray[0].status == "fail"
    assert other in stray[0].evidence and prod.vpc in stray[0].evidence
    assert "no route from the ALB subnets" in stray[0].evidence
    routes = [f for f in fs if f.id == "net.routes" and inst in f.resource]
    assert routes[0].status == "fail"
    # the healthy original target still passes
    assert [f.status for f in fs if f.id == "net.same_vpc" and prod.instance in f.resource] == [
        "pass"
    ]


def test_stopped_instance(clients, prod):
    clients.ec2.stop_instances(InstanceIds=[prod.instance])
    fs = findings_for(clients, prod.lb_name)
    f = one(fs, "instance.running")
    assert f.status == "fail" and "state=stopped" in f.evidence
    assert f.remediation == f"aws ec2 start-instances --instance-ids {prod.instance}"
    th = one(fs, "target.health")
    assert th.status == "fail" and "Target.InvalidState" in th.evidence
    assert "stopped or terminated" in th.evidence  # the reason in plain words
    assert one(fs, "tg.fail_open").status == "fail"
    assert one(fs, "instance.status_checks").status == "skip"


def test_listener_not_forwarding_to_the_group(clients):
    prod = build_prod(clients, forward=False)
    # Not attached to the ALB: found only when named.
    fs = findings_for(clients, prod.lb_name)
    assert failing(fs) == {"tg.exists"}
    assert "--target-group" in one(fs, "tg.exists").evidence
    fs = findings_for(clients, prod.lb_name, target_group="academy-api-tg")
    assert failing(fs) == {"listener.forwards"}
    f = one(fs, "listener.forwards")
    assert "fixed-response 503" in f.evidence
    assert f.remediation == (
        f"aws elbv2 modify-listener --listener-arn {prod.listener_arn} "
        f"--default-actions Type=forward,TargetGroupArn={prod.tg_arn}"
    )


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


def test_nacl_that_blocks_the_port(clients, prod):
    ec2 = clients.ec2
    acl = ec2.create_network_acl(VpcId=prod.vpc)["NetworkAcl"]["NetworkAclId"]
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl,
            RuleNumber=100,
            Protocol="-1",
            RuleAction="allow",
            Egress=egress,
            CidrBlock="0.0.0.0/0",
        )
    ec2.create_network_acl_entry(
        NetworkAclId=acl,
        RuleNumber=90,
        Protocol="6",
        RuleAction="deny",
        Egress=False,
        CidrBlock="10.0.0.0/16",
        PortRange={"From": 8000, "To": 8000},
    )
    current = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [prod.api_subnet]}]
    )["NetworkAcls"][0]
    assoc = next(a for a in current["Associations"] if a["SubnetId"] == prod.api_subnet)
    ec2.replace_network_acl_association(
        AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=acl
    )
    fs = findings_for(clients, prod.lb_name)
    assert failing(fs) == {"nacl.target_inbound"}
    f = one(fs, "nacl.target_inbound")
    assert acl in f.evidence and "denied by rule 90" in f.evidence
    assert (
        f"aws ec2 create-network-acl-entry --network-acl-id {acl} --ingress --rule-number 89 "
        "--protocol tcp --port-range From=8000,To=8000 --cidr-block 10.0.1.0/24 --rule-action allow"
    ) in f.remediation


def test_target_in_an_az_the_alb_does_not_serve(clients, prod):
    ec2 = clients.ec2
    subnet = ec2.create_subnet(
        VpcId=prod.vpc, CidrBlock="10.0.12.0/24", AvailabilityZone="us-east-1c"
    )["Subnet"]["SubnetId"]
    inst = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        SecurityGroupIds=[prod.api_sg],
    )["Instances"][0]["InstanceId"]
    clients.elbv2.register_targets(TargetGroupArn=prod.tg_arn, Targets=[{"Id": inst, "Port": 8000}])
    fs = findings_for(clients, prod.lb_name)
    f = [x for x in fs if x.id == "net.target_az" and inst in x.resource][0]
    assert f.status == "fail" and "us-east-1c" in f.evidence
    assert failing(fs) == {"net.target_az"}


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
