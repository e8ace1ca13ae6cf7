"""Read the chain ALB -> listeners -> target groups -> targets -> SGs -> subnets/routes/NACLs ->
instances from AWS into a Topology. Read-only: every call here is a Describe*.

Every AWS failure becomes a one-line AlbprobeError (exit code 2) naming the call and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from core.errors import AlbprobeError
from probes.aws.session import AwsClients, aws_errors, error_code
from probes.aws.topology import (
    Action,
    HealthCheckSettings,
    Instance,
    Listener,
    LoadBalancer,
    NaclEntry,
    NetworkAcl,
    NetworkInterface,
    Permission,
    Route,
    RouteTable,
    Rule,
    SecurityGroup,
    Subnet,
    TargetGroup,
    TargetHealth,
    Topology,
    Vpc,
)

MAX_PAGES = 100  # every pagination loop is bounded, and says so when it hits the bound
_FILTER_CHUNK = 190  # EC2 filters take at most 200 values


def region_from_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def _chunks(values: list[str], n: int = _FILTER_CHUNK) -> Iterator[list[str]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]


def _pages(paginator: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for i, page in enumerate(paginator.paginate(**kwargs)):
        if i >= MAX_PAGES:
            raise AlbprobeError(f"more than {MAX_PAGES} pages of results; narrow the query")
        yield page


# ---------------------------------------------------------------------------------------------
# parsing (pure: API dicts -> dataclasses)


def parse_action(a: dict[str, Any]) -> Action:
    kind = a.get("Type", "")
    tgs: list[str] = []
    if a.get("TargetGroupArn"):
        tgs.append(a["TargetGroupArn"])
    for t in a.get("ForwardConfig", {}).get("TargetGroups", []) or []:
        if t.get("TargetGroupArn") and t["TargetGroupArn"] not in tgs:
            tgs.append(t["TargetGroupArn"])
    detail = ""
    if kind == "redirect":
        r = a.get("RedirectConfig", {})
        detail = (
            f"redirect {r.get('StatusCode', '')} to {r.get('Protocol', '#{protocol}')}://"
            f"{r.get('Host', '#{host}')}:{r.get('Port', '#{port}')}{r.get('Path', '/#{path}')}"
        )
    elif kind == "fixed-response":
        detail = f"fixed-response {a.get('FixedResponseConfig', {}).get('StatusCode', '')}"
    return Action(kind, tuple(tgs), detail)


def _condition_summary(conditions: Iterable[dict[str, Any]]) -> str:
    parts = []
    for c in conditions:
        field = c.get("Field", "?")
        values = list(c.get("Values", []) or [])
        for key, cfg in c.items():
            if key.endswith("Config") and isinstance(cfg, dict):
                values.extend(cfg.get("Values", []) or [])
        parts.append(f"{field}={'|'.join(values)}")
    return " & ".join(parts) or "any"


def parse_load_balancer(lb: dict[str, Any], attributes: dict[str, str]) -> LoadBalancer:
    azs = lb.get("AvailabilityZones", []) or []
    state = lb.get("State", {}) or {}
    return LoadBalancer(
        arn=lb["LoadBalancerArn"],
        name=lb["LoadBalancerName"],
        type=lb.get("Type", "application"),
        scheme=lb.get("Scheme", "internet-facing"),
        state=state.get("Code", "unknown"),
        state_reason=state.get("Reason"),
        vpc_id=lb.get("VpcId", ""),
        dns_name=lb.get("DNSName", ""),
        subnet_ids=tuple(z["SubnetId"] for z in azs if z.get("SubnetId")),
        availability_zones=tuple(z["ZoneName"] for z in azs if z.get("ZoneName")),
        security_groups=tuple(lb.get("SecurityGroups", []) or []),
        attributes=dict(attributes),
    )


def parse_target_group(tg: dict[str, Any]) -> TargetGroup:
    hc = HealthCheckSettings(
        enabled=bool(tg.get("HealthCheckEnabled", True)),
        protocol=tg.get("HealthCheckProtocol") or tg.get("Protocol", "HTTP"),
        port=str(tg.get("HealthCheckPort") or "traffic-port"),
        path=tg.get("HealthCheckPath", "/"),
        matcher=(tg.get("Matcher") or {}).get("HttpCode", "200"),
        interval=int(tg.get("HealthCheckIntervalSeconds", 30)),
        timeout=int(tg.get("HealthCheckTimeoutSeconds", 5)),
        healthy_threshold=int(tg.get("HealthyThresholdCount", 5)),
        unhealthy_threshold=int(tg.get("UnhealthyThresholdCount", 2)),
    )
    return TargetGroup(
        arn=tg["TargetGroupArn"],
        name=tg["TargetGroupName"],
        protocol=tg.get("Protocol", "HTTP"),
        port=int(tg.get("Port", 0)),
        vpc_id=tg.get("VpcId", ""),
        target_type=tg.get("TargetType", "instance"),
        health_check=hc,
        load_balancer_arns=tuple(tg.get("LoadBalancerArns", []) or []),
    )


def parse_target_health(d: dict[str, Any], default_port: int) -> TargetHealth:
    t = d.get("Target", {})
    h = d.get("TargetHealth", {})
    return TargetHealth(
        id=t["Id"],
        port=int(t.get("Port") or default_port),
        state=h.get("State", "unknown"),
        reason=h.get("Reason"),
        description=h.get("Description"),
        availability_zone=t.get("AvailabilityZone"),
    )


def _port(v: Any) -> int | None:
    return None if v is None or int(v) < 0 else int(v)


def parse_permission(p: dict[str, Any]) -> Permission:
    return Permission(
        protocol=str(p.get("IpProtocol", "-1")),
        from_port=_port(p.get("FromPort")),
        to_port=_port(p.get("ToPort")),
        cidrs=tuple(r["CidrIp"] for r in p.get("IpRanges", []) or [] if r.get("CidrIp")),
        ipv6_cidrs=tuple(r["CidrIpv6"] for r in p.get("Ipv6Ranges", []) or [] if r.get("CidrIpv6")),
        groups=tuple(g["GroupId"] for g in p.get("UserIdGroupPairs", []) or [] if g.get("GroupId")),
        prefix_lists=tuple(
            x["PrefixListId"] for x in p.get("PrefixListIds", []) or [] if x.get("PrefixListId")
        ),
    )


def parse_security_group(g: dict[str, Any]) -> SecurityGroup:
    return SecurityGroup(
        id=g["GroupId"],
        name=g.get("GroupName", ""),
        vpc_id=g.get("VpcId", ""),
        ingress=tuple(parse_permission(p) for p in g.get("IpPermissions", []) or []),
        egress=tuple(parse_permission(p) for p in g.get("IpPermissionsEgress", []) or []),
    )


def parse_route_table(rt: dict[str, Any]) -> RouteTable:
    assocs = rt.get("Associations", []) or []
    routes = []
    for r in rt.get("Routes", []) or []:
        target = next(
            (
                str(r[k])
                for k in (
                    "GatewayId",
                    "NatGatewayId",
                    "VpcPeeringConnectionId",
                    "TransitGatewayId",
                    "NetworkInterfaceId",
                    "InstanceId",
                    "LocalGatewayId",
                    "CarrierGatewayId",
                    "EgressOnlyInternetGatewayId",
                    "CoreNetworkArn",
                )
                if r.get(k)
            ),
            "?",
        )
        routes.append(Route(r.get("DestinationCidrBlock", ""), target, r.get("State", "active")))
    return RouteTable(
        id=rt["RouteTableId"],
        vpc_id=rt.get("VpcId", ""),
        main=any(a.get("Main") for a in assocs),
        subnet_ids=tuple(a["SubnetId"] for a in assocs if a.get("SubnetId")),
        routes=tuple(routes),
    )


def parse_network_acl(acl: dict[str, Any]) -> NetworkAcl:
    entries = []
    for e in acl.get("Entries", []) or []:
        if not e.get("CidrBlock"):  # IPv6 entries: the ALB->target path here is IPv4
            continue
        pr = e.get("PortRange") or {}
        entries.append(
            NaclEntry(
                rule_number=int(e["RuleNumber"]),
                egress=bool(e.get("Egress")),
                protocol=str(e.get("Protocol", "-1")),
                action=e.get("RuleAction", "deny"),
                cidr=e["CidrBlock"],
                from_port=pr.get("From"),
                to_port=pr.get("To"),
            )
        )
    return NetworkAcl(
        id=acl["NetworkAclId"],
        vpc_id=acl.get("VpcId", ""),
        is_default=bool(acl.get("IsDefault")),
        subnet_ids=tuple(
            a["SubnetId"] for a in acl.get("Associations", []) or [] if a.get("SubnetId")
        ),
        entries=tuple(entries),
    )


def parse_instance(i: dict[str, Any]) -> Instance:
    return Instance(
        id=i["InstanceId"],
        state=(i.get("State") or {}).get("Name", "unknown"),
        vpc_id=i.get("VpcId"),
        subnet_id=i.get("SubnetId"),
        availability_zone=(i.get("Placement") or {}).get("AvailabilityZone"),
        private_ip=i.get("PrivateIpAddress"),
        security_groups=tuple(g["GroupId"] for g in i.get("SecurityGroups", []) or []),
    )


# ---------------------------------------------------------------------------------------------
# AWS reads


def find_load_balancer(clients: AwsClients, name_or_arn: str) -> dict[str, Any]:
    key = "LoadBalancerArns" if name_or_arn.startswith("arn:") else "Names"
    with aws_errors("describing the load balancer"):
        try:
            lbs = clients.elbv2.describe_load_balancers(**{key: [name_or_arn]})["LoadBalancers"]
        except Exception as exc:
            if error_code(exc) not in ("LoadBalancerNotFound", "ValidationError"):
                raise
            lbs = []
    if not lbs:
        raise AlbprobeError(
            f"load balancer {name_or_arn!r} not found in {clients.region}",
            hint=f"list them: aws elbv2 describe-load-balancers --region {clients.region} "
            "--query 'LoadBalancers[].LoadBalancerName'",
        )
    lb = lbs[0]
    if lb.get("Type", "application") != "application":
        raise AlbprobeError(
            f"{lb['LoadBalancerName']} is a {lb.get('Type')} load balancer",
            hint="albprobe check covers Application Load Balancers",
        )
    return lb


def _target_groups(clients: AwsClients, lb_arn: str, wanted: str | None) -> list[dict[str, Any]]:
    pag = clients.elbv2.get_paginator("describe_target_groups")
    if wanted is None:
        try:
            return [
                tg for page in _pages(pag, LoadBalancerArn=lb_arn) for tg in page["TargetGroups"]
            ]
        except Exception as exc:
            if error_code(exc) == "TargetGroupNotFound":  # none attached (moto raises, AWS: [])
                return []
            raise
    key = "TargetGroupArns" if wanted.startswith("arn:") else "Names"
    try:
        return [tg for page in _pages(pag, **{key: [wanted]}) for tg in page["TargetGroups"]]
    except Exception as exc:
        if error_code(exc) in ("TargetGroupNotFound", "ValidationError"):
            raise AlbprobeError(
                f"target group {wanted!r} not found in {clients.region}",
                hint="list them: aws elbv2 describe-target-groups --query "
                "'TargetGroups[].TargetGroupName', or drop --target-group",
            ) from None
        raise


def _forwarded_missing(
    clients: AwsClients, listeners: list[Listener], found: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The target groups the listeners forward to that ``found`` lacks."""
    have = {t["TargetGroupArn"] for t in found}
    actions = [a for lst in listeners for r in lst.rules for a in r.actions]
    actions += [a for lst in listeners for a in lst.default_actions]
    missing = sorted({arn for a in actions for arn in a.target_groups} - have)
    pag = clients.elbv2.get_paginator("describe_target_groups")
    return [
        t
        for chunk in _chunks(missing, 20)
        for page in _pages(pag, TargetGroupArns=chunk)
        for t in page["TargetGroups"]
    ]


def _unattached_target_groups(clients: AwsClients, vpc_id: str) -> Iterator[TargetGroup]:
    pag = clients.elbv2.get_paginator("describe_target_groups")
    for page in _pages(pag):
        for t in page["TargetGroups"]:
            if t.get("VpcId") == vpc_id and not t.get("LoadBalancerArns"):
                yield parse_target_group(t)


def listener_rules(clients: AwsClients, listener_arn: str) -> list[dict[str, Any]]:
    """Every rule of a listener, through botocore's describe_rules paginator (Marker/NextMarker)."""
    pag = clients.elbv2.get_paginator("describe_rules")
    return [r for page in _pages(pag, ListenerArn=listener_arn) for r in page.get("Rules", [])]


def _filtered(paginator: Any, key: str, name: str, values: Iterable[str]) -> list[dict[str, Any]]:
    """Results of an EC2 Describe* filtered by ``name`` in ``values`` (missing ids: no error)."""
    out: list[dict[str, Any]] = []
    values = sorted({v for v in values if v})
    for chunk in _chunks(values):
        for page in _pages(paginator, Filters=[{"Name": name, "Values": chunk}]):
            out.extend(page.get(key, []))
    return out


def _tg_attributes(clients: AwsClients, tg_arn: str) -> dict[str, str]:
    resp = clients.elbv2.describe_target_group_attributes(TargetGroupArn=tg_arn)
    return {a["Key"]: a.get("Value", "") for a in resp.get("Attributes", [])}


def gather(clients: AwsClients, load_balancer: str, target_group: str | None = None) -> Topology:
    """Read the whole chain for one ALB (and one target group, or every group it uses)."""
    raw_lb = find_load_balancer(clients, load_balancer)
    lb_arn = raw_lb["LoadBalancerArn"]
    with aws_errors("reading the load balancer's attributes"):
        attrs = clients.elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)
    lb = parse_load_balancer(
        raw_lb, {a["Key"]: a.get("Value", "") for a in attrs.get("Attributes", [])}
    )

    with aws_errors("listing listeners and rules"):
        listeners = []
        pag = clients.elbv2.get_paginator("describe_listeners")
        for page in _pages(pag, LoadBalancerArn=lb_arn):
            for lst in page["Listeners"]:
                rules = [
                    Rule(
                        r["RuleArn"],
                        str(r.get("Priority", "")),
                        _condition_summary(r.get("Conditions", [])),
                        tuple(parse_action(a) for a in r.get("Actions", [])),
                    )
                    for r in listener_rules(clients, lst["ListenerArn"])
                ]
                listeners.append(
                    Listener(
                        lst["ListenerArn"],
                        int(lst.get("Port", 0)),
                        lst.get("Protocol", ""),
                        tuple(parse_action(a) for a in lst.get("DefaultActions", [])),
                        tuple(rules),
                    )
                )

    with aws_errors("reading target groups and target health"):
        raw_tgs = _target_groups(clients, lb_arn, target_group)
        if target_group is None:  # also what the listeners forward to (moto's LoadBalancerArns
            # for a target group lags a modify-listener; the listeners are what the ALB does)
            raw_tgs += _forwarded_missing(clients, listeners, raw_tgs)
        tgs = [
            replace(parse_target_group(t), attributes=_tg_attributes(clients, t["TargetGroupArn"]))
            for t in raw_tgs
        ]
        spare: tuple[TargetGroup, ...] = ()
        if not tgs and target_group is None:
            spare = tuple(_unattached_target_groups(clients, lb.vpc_id))
        health: dict[str, tuple[TargetHealth, ...]] = {}
        for tg in tgs:
            resp = clients.elbv2.describe_target_health(TargetGroupArn=tg.arn)
            health[tg.arn] = tuple(
                parse_target_health(d, tg.port) for d in resp.get("TargetHealthDescriptions", [])
            )

    instance_ids = [
        th.id for tg in tgs if tg.target_type == "instance" for th in health.get(tg.arn, ())
    ]
    ips = [th.id for tg in tgs if tg.target_type == "ip" for th in health.get(tg.arn, ())]
    with aws_errors("describing the target instances"):
        raw_instances = [
            i
            for r in _filtered(
                clients.ec2.get_paginator("describe_instances"),
                "Reservations",
                "instance-id",
                instance_ids,
            )
            for i in r.get("Instances", [])
        ]
        instances = {i["InstanceId"]: parse_instance(i) for i in raw_instances}
        running = [i for i, inst in instances.items() if inst.state == "running"]
        status: dict[str, tuple[str | None, str | None]] = {}
        for chunk in _chunks(running, 100):
            resp = clients.ec2.describe_instance_status(InstanceIds=chunk, IncludeAllInstances=True)
            for s in resp.get("InstanceStatuses", []):
                status[s["InstanceId"]] = (
                    (s.get("SystemStatus") or {}).get("Status"),
                    (s.get("InstanceStatus") or {}).get("Status"),
                )
        for iid, (sys_s, inst_s) in status.items():
            old = instances[iid]
            instances[iid] = replace(old, system_status=sys_s, instance_status=inst_s)

    with aws_errors("describing the network interfaces of IP targets"):
        interfaces: dict[str, NetworkInterface] = {}
        for eni in _filtered(
            clients.ec2.get_paginator("describe_network_interfaces"),
            "NetworkInterfaces",
            "addresses.private-ip-address",
            ips,
        ):
            for addr in eni.get("PrivateIpAddresses", []) or []:
                ip = addr.get("PrivateIpAddress")
                if ip in ips:
                    interfaces[ip] = NetworkInterface(
                        eni["NetworkInterfaceId"],
                        ip,
                        eni.get("SubnetId", ""),
                        eni.get("VpcId", ""),
                        eni.get("AvailabilityZone", ""),
                        tuple(g["GroupId"] for g in eni.get("Groups", []) or []),
                    )

    sg_ids = list(lb.security_groups)
    subnet_ids = list(lb.subnet_ids)
    vpc_ids = [lb.vpc_id, *(tg.vpc_id for tg in tgs)]
    for inst in instances.values():
        sg_ids.extend(inst.security_groups)
        subnet_ids.extend([inst.subnet_id] if inst.subnet_id else [])
        vpc_ids.extend([inst.vpc_id] if inst.vpc_id else [])
    for eni in interfaces.values():
        sg_ids.extend(eni.security_groups)
        subnet_ids.append(eni.subnet_id)
        vpc_ids.append(eni.vpc_id)
    vpc_ids = [v for v in dict.fromkeys(vpc_ids) if v]

    with aws_errors("describing security groups, subnets, route tables and network ACLs"):
        sgs = {
            g["GroupId"]: parse_security_group(g)
            for g in _filtered(
                clients.ec2.get_paginator("describe_security_groups"),
                "SecurityGroups",
                "group-id",
                sg_ids,
            )
        }
        pag = clients.ec2.get_paginator("describe_subnets")
        subnets = {
            s["SubnetId"]: Subnet(s["SubnetId"], s["VpcId"], s["AvailabilityZone"], s["CidrBlock"])
            # the targets' subnets, and every subnet of the ALB's VPC (candidates for its AZs)
            for s in _filtered(pag, "Subnets", "subnet-id", subnet_ids)
            + _filtered(pag, "Subnets", "vpc-id", [lb.vpc_id])
        }
        resp = clients.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])
        vpcs = {
            v["VpcId"]: Vpc(
                v["VpcId"],
                tuple(
                    a["CidrBlock"]
                    for a in v.get("CidrBlockAssociationSet", []) or [{"CidrBlock": v["CidrBlock"]}]
                    if a.get("CidrBlock")
                ),
            )
            for v in resp.get("Vpcs", [])
        }
        route_tables = tuple(
            parse_route_table(rt)
            for rt in _filtered(
                clients.ec2.get_paginator("describe_route_tables"), "RouteTables", "vpc-id", vpc_ids
            )
        )
        nacls = tuple(
            parse_network_acl(a)
            for a in _filtered(
                clients.ec2.get_paginator("describe_network_acls"), "NetworkAcls", "vpc-id", vpc_ids
            )
        )

    return Topology(
        region=clients.region or "",
        load_balancer=lb,
        listeners=tuple(listeners),
        target_groups=tuple(tgs),
        target_health=health,
        security_groups=sgs,
        subnets=subnets,
        vpcs=vpcs,
        route_tables=route_tables,
        network_acls=nacls,
        instances=instances,
        interfaces=interfaces,
        unattached_target_groups=spare,
    )


def resolve_target_group(
    clients: AwsClients, load_balancer: str | None, target_group: str | None
) -> tuple[str | None, str]:
    """(load balancer ARN or None, target group ARN) for the collectors of a load run.

    A named target group wins; otherwise the load balancer's first target group."""
    lb_arn = (
        find_load_balancer(clients, load_balancer)["LoadBalancerArn"] if load_balancer else None
    )
    with aws_errors("describing the target groups"):
        tgs = _target_groups(clients, lb_arn or "", target_group)
    if not tgs:
        raise AlbprobeError(
            f"no target group found for load balancer {load_balancer!r}",
            hint="name one with [aws] target_group in albprobe.toml",
        )
    if lb_arn is None and tgs[0].get("LoadBalancerArns"):
        lb_arn = tgs[0]["LoadBalancerArns"][0]
    return lb_arn, tgs[0]["TargetGroupArn"]
