"""The AWS area's shared helpers (a module with a unique name, so test modules import it
unambiguously; `conftest` is a different module in every test folder): the production-like
topology the runbook describes, built in a moto server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from probes.aws.session import AwsClients

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class Prod:
    """Ids of the topology built in moto (the names follow the runbook)."""

    vpc: str
    alb_subnets: list[str]
    api_subnet: str
    alb_sg: str
    api_sg: str
    instance: str
    instance_ip: str
    lb_arn: str
    lb_name: str
    tg_arn: str
    listener_arn: str
    bucket: str


def build_prod(
    c: AwsClients,
    *,
    api_sg_port: int | None = 8000,
    forward: bool = True,
    idle_timeout: int | None = 60,
    access_logs: bool = True,
) -> Prod:
    """ALB in two public subnets -> TG HTTP:8000 (/health) -> academy-api instance in a private
    subnet whose security group admits 8000 from the ALB security group."""
    ec2, elbv2 = c.ec2, c.elbv2
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    alb_subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b"))
    ]
    api_subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.0.11.0/24", AvailabilityZone="us-east-1a"
    )["Subnet"]["SubnetId"]
    alb_sg = ec2.create_security_group(GroupName="alb-sg", Description="alb", VpcId=vpc)["GroupId"]
    api_sg = ec2.create_security_group(GroupName="api-sg", Description="api", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=alb_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": p,
                "ToPort": p,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
            for p in (80, 443)
        ],
    )
    if api_sg_port is not None:
        ec2.authorize_security_group_ingress(
            GroupId=api_sg,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": api_sg_port,
                    "ToPort": api_sg_port,
                    "UserIdGroupPairs": [{"GroupId": alb_sg}],
                }
            ],
        )
    inst = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        SubnetId=api_subnet,
        SecurityGroupIds=[api_sg],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "academy-api"}]}
        ],
    )["Instances"][0]
    lb = elbv2.create_load_balancer(
        Name="academy-alb",
        Subnets=alb_subnets,
        SecurityGroups=[alb_sg],
        Scheme="internet-facing",
        Type="application",
    )["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name="academy-api-tg",
        Protocol="HTTP",
        Port=8000,
        VpcId=vpc,
        TargetType="instance",
        HealthCheckProtocol="HTTP",
        HealthCheckPort="traffic-port",
        HealthCheckPath="/health",
        HealthCheckIntervalSeconds=30,
        HealthCheckTimeoutSeconds=5,
        HealthyThresholdCount=5,
        UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]
    if forward:
        action = {"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}
    else:
        action = {
            "Type": "fixed-response",
            "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"},
        }
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[action]
    )["Listeners"][0]
    elbv2.register_targets(
        TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": inst["InstanceId"], "Port": 8000}]
    )
    bucket = "academy-alb-logs"
    c.s3.create_bucket(Bucket=bucket)
    attrs = []
    if idle_timeout is not None:
        attrs.append({"Key": "idle_timeout.timeout_seconds", "Value": str(idle_timeout)})
    if access_logs:
        attrs += [
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": bucket},
            {"Key": "access_logs.s3.prefix", "Value": "alb"},
        ]
    if attrs:
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=lb["LoadBalancerArn"], Attributes=attrs
        )
    return Prod(
        vpc=vpc,
        alb_subnets=alb_subnets,
        api_subnet=api_subnet,
        alb_sg=alb_sg,
        api_sg=api_sg,
        instance=inst["InstanceId"],
        instance_ip=inst["PrivateIpAddress"],
        lb_arn=lb["LoadBalancerArn"],
        lb_name=lb["LoadBalancerName"],
        tg_arn=tg["TargetGroupArn"],
        listener_arn=listener["ListenerArn"],
        bucket=bucket,
    )


@dataclass
class Broken:
    """A production-like topology with one thing broken, and how `albprobe check` is pointed at it."""

    prod: Prod
    target_group: str | None = None  # --target-group
    expected: dict[str, Any] = field(default_factory=dict)  # Expected(...) overrides (config/CLI)
    extra: dict[str, str] = field(default_factory=dict)  # ids the breakage added


def sg_without_port(c: AwsClients) -> Broken:
    return Broken(build_prod(c, api_sg_port=None))


def sg_with_wrong_port(c: AwsClients) -> Broken:
    return Broken(build_prod(c, api_sg_port=80))


def target_in_other_vpc(c: AwsClients) -> Broken:
    """A second target, registered by mistake, in another VPC that nothing routes to."""
    prod = build_prod(c)
    other = c.ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    subnet = c.ec2.create_subnet(
        VpcId=other, CidrBlock="172.31.1.0/24", AvailabilityZone="us-east-1a"
    )["Subnet"]["SubnetId"]
    inst = c.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)[
        "Instances"
    ][0]["InstanceId"]
    c.elbv2.register_targets(TargetGroupArn=prod.tg_arn, Targets=[{"Id": inst, "Port": 8000}])
    return Broken(prod, extra={"vpc": other, "instance": inst})


def stopped_instance(c: AwsClients) -> Broken:
    prod = build_prod(c)
    c.ec2.stop_instances(InstanceIds=[prod.instance])
    return Broken(prod)


def listener_not_forwarding(c: AwsClients) -> Broken:
    """The listener answers a fixed 503: the API's target group is attached to nothing."""
    return Broken(build_prod(c, forward=False))


def listener_not_forwarding_named(c: AwsClients) -> Broken:
    """The same, with the API's target group named by --target-group."""
    return Broken(build_prod(c, forward=False), target_group="academy-api-tg")


def nacl_denies_the_port(c: AwsClients) -> Broken:
    """The API subnet's own ACL: allow all, but rule 90 denies tcp/8000 from the whole VPC."""
    prod = build_prod(c)
    ec2 = c.ec2
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
    return Broken(prod, extra={"acl": acl})


def target_in_unserved_az(c: AwsClients) -> Broken:
    """A second API instance in us-east-1c, where the VPC has a subnet but the ALB is not enabled."""
    prod = build_prod(c)
    subnet = c.ec2.create_subnet(
        VpcId=prod.vpc, CidrBlock="10.0.12.0/24", AvailabilityZone="us-east-1c"
    )["Subnet"]["SubnetId"]
    inst = c.ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        SecurityGroupIds=[prod.api_sg],
    )["Instances"][0]["InstanceId"]
    c.elbv2.register_targets(TargetGroupArn=prod.tg_arn, Targets=[{"Id": inst, "Port": 8000}])
    return Broken(prod, extra={"subnet": subnet, "instance": inst})


def keepalive_shorter_than_idle_timeout(c: AwsClients) -> Broken:
    """gthread workers keep connections 5 s; the ALB's idle timeout is AWS's default 60 s."""
    return Broken(
        build_prod(c, idle_timeout=None),
        expected={"keepalive": 5, "worker_class": "gthread", "threads": 4},
    )


def access_logs_disabled(c: AwsClients) -> Broken:
    return Broken(build_prod(c, access_logs=False))


def health_check_path_differs(c: AwsClients) -> Broken:
    """The API's health endpoint is /healthz ([aws.health_check] path); the group checks /health."""
    return Broken(build_prod(c), expected={"health_check_path": "/healthz"})


def nacl_without_ephemeral_ports(c: AwsClients) -> Broken:
    """One custom ACL on every subnet that admits only the listener ports: tcp/8000 to the target
    and the replies (ephemeral ports) both ways are dropped; the inbound fixes of two NACL checks
    land in the same ACL and direction."""
    prod = build_prod(c)
    ec2 = c.ec2
    acl = ec2.create_network_acl(VpcId=prod.vpc)["NetworkAcl"]["NetworkAclId"]
    for n, port in ((100, 80), (110, 443)):
        ec2.create_network_acl_entry(
            NetworkAclId=acl,
            RuleNumber=n,
            Protocol="6",
            RuleAction="allow",
            Egress=False,
            CidrBlock="0.0.0.0/0",
            PortRange={"From": port, "To": port},
        )
    ec2.create_network_acl_entry(
        NetworkAclId=acl,
        RuleNumber=100,
        Protocol="6",
        RuleAction="allow",
        Egress=True,
        CidrBlock="10.0.0.0/16",
        PortRange={"From": 8000, "To": 8000},
    )
    for assoc in ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [prod.vpc]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"][0]["Associations"]:
        ec2.replace_network_acl_association(
            AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=acl
        )
    return Broken(prod, extra={"acl": acl})


def alb_egress_only_to_the_internet(c: AwsClients) -> Broken:
    """The ALB's security group lets out only tcp/443 to the internet, not tcp/8000 to the API."""
    prod = build_prod(c)
    ec2 = c.ec2
    ec2.revoke_security_group_egress(
        GroupId=prod.alb_sg,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.authorize_security_group_egress(
        GroupId=prod.alb_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    return Broken(prod)


def no_registered_targets(c: AwsClients) -> Broken:
    """The API instance was deregistered: the group is empty (the ALB answers 503)."""
    prod = build_prod(c)
    c.elbv2.deregister_targets(
        TargetGroupArn=prod.tg_arn, Targets=[{"Id": prod.instance, "Port": 8000}]
    )
    return Broken(prod)


def _tg_attributes(c: AwsClients, prod: Prod, **attrs: str) -> None:
    c.elbv2.modify_target_group_attributes(
        TargetGroupArn=prod.tg_arn,
        Attributes=[{"Key": k.replace("__", "."), "Value": v} for k, v in attrs.items()],
    )


def drain_shorter_than_graceful_timeout(c: AwsClients) -> Broken:
    """Draining lasts 10 s; gunicorn's graceful timeout ([capacity] graceful_timeout) is 30 s."""
    prod = build_prod(c)
    _tg_attributes(c, prod, deregistration_delay__timeout_seconds="10")
    return Broken(prod, expected={"graceful_timeout": 30.0})


def drain_shorter_than_longest_request(c: AwsClients) -> Broken:
    """Draining lasts 60 s; a report endpoint runs 120 s ([capacity] longest_request)."""
    prod = build_prod(c)
    _tg_attributes(c, prod, deregistration_delay__timeout_seconds="60")
    return Broken(prod, expected={"longest_request": 120.0})


def second_api_instance(c: AwsClients, prod: Prod, az: str = "us-east-1b") -> str:
    """Another API instance in a private subnet of ``az``, registered on 8000."""
    subnet = c.ec2.create_subnet(VpcId=prod.vpc, CidrBlock="10.0.13.0/24", AvailabilityZone=az)[
        "Subnet"
    ]["SubnetId"]
    inst = c.ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        SecurityGroupIds=[prod.api_sg],
    )["Instances"][0]["InstanceId"]
    c.elbv2.register_targets(TargetGroupArn=prod.tg_arn, Targets=[{"Id": inst, "Port": 8000}])
    return inst


def round_robin_with_long_requests(c: AwsClients) -> Broken:
    """Two targets, round robin (AWS's default), requests up to 20 s long."""
    prod = build_prod(c)
    inst = second_api_instance(c, prod)
    return Broken(prod, expected={"longest_request": 20.0}, extra={"instance": inst})


def cross_zone_off_with_an_empty_zone(c: AwsClients) -> Broken:
    """Cross-zone load balancing turned off on the group; its one target is in us-east-1a, the
    ALB also has a node in us-east-1b."""
    prod = build_prod(c)
    _tg_attributes(c, prod, load_balancing__cross_zone__enabled="false")
    return Broken(prod)


# Every broken topology the AWS tests build (the fix-replay test runs each one's fixes).
BROKEN: dict[str, Callable[[AwsClients], Broken]] = {
    f.__name__: f
    for f in (
        sg_without_port,
        sg_with_wrong_port,
        target_in_other_vpc,
        stopped_instance,
        listener_not_forwarding,
        listener_not_forwarding_named,
        nacl_denies_the_port,
        target_in_unserved_az,
        keepalive_shorter_than_idle_timeout,
        access_logs_disabled,
        health_check_path_differs,
        nacl_without_ephemeral_ports,
        alb_egress_only_to_the_internet,
        no_registered_targets,
        drain_shorter_than_graceful_timeout,
        drain_shorter_than_longest_request,
        round_robin_with_long_requests,
        cross_zone_off_with_an_empty_zone,
    )
}


def boto_client(service: str, moto_url: str):  # for tests that need a plain client
    return boto3.client(service, region_name=REGION, endpoint_url=moto_url)
