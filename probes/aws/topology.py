"""A snapshot of everything between the ALB and the API instances, as plain dataclasses.

The gatherer (gather.py) fills it from boto3; the checks (checks.py) only read it, so every check is
a pure function that unit tests can drive with hand-built topologies and no AWS at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# AWS's documented default when `idle_timeout.timeout_seconds` is absent (moto omits it until set).
DEFAULT_IDLE_TIMEOUT = 60.0
# AWS's defaults for the target-group attributes the checks read.
TG_ATTRIBUTE_DEFAULTS = {
    "deregistration_delay.timeout_seconds": "300",
    "slow_start.duration_seconds": "0",
    "load_balancing.algorithm.type": "round_robin",
    "load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
}


@dataclass(frozen=True)
class Action:
    """A listener/rule action; ``target_groups`` lists every group a forward sends to."""

    type: str
    target_groups: tuple[str, ...] = ()
    detail: str = ""  # redirect URL / fixed-response status, for evidence


@dataclass(frozen=True)
class Rule:
    arn: str
    priority: str  # "default" or a number as text, as the API returns it
    conditions: str  # a short human summary, e.g. "path-pattern=/api/*"
    actions: tuple[Action, ...]

    @property
    def is_default(self) -> bool:
        return self.priority == "default"


@dataclass(frozen=True)
class Listener:
    arn: str
    port: int
    protocol: str
    default_actions: tuple[Action, ...]
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class LoadBalancer:
    arn: str
    name: str
    type: str
    scheme: str
    state: str
    state_reason: str | None
    vpc_id: str
    dns_name: str
    subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    security_groups: tuple[str, ...]
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def idle_timeout(self) -> float:
        raw = self.attributes.get("idle_timeout.timeout_seconds")
        return float(raw) if raw else DEFAULT_IDLE_TIMEOUT

    @property
    def idle_timeout_is_default(self) -> bool:
        return not self.attributes.get("idle_timeout.timeout_seconds")


@dataclass(frozen=True)
class HealthCheckSettings:
    enabled: bool
    protocol: str
    port: str  # "traffic-port" or a number as text
    path: str
    matcher: str  # HttpCode, e.g. "200", "200-299", "200,302"
    interval: int
    timeout: int
    healthy_threshold: int
    unhealthy_threshold: int


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    protocol: str
    port: int
    vpc_id: str
    target_type: str  # instance | ip | lambda | alb
    health_check: HealthCheckSettings
    load_balancer_arns: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)  # describe-target-group-attributes

    def attribute(self, key: str) -> str:
        """An attribute's value, or AWS's documented default when the API leaves it out."""
        return self.attributes.get(key) or TG_ATTRIBUTE_DEFAULTS.get(key, "")

    def health_check_port(self, target_port: int) -> int:
        hc = self.health_check.port
        return target_port if hc in ("traffic-port", "") else int(hc)


@dataclass(frozen=True)
class TargetHealth:
    id: str
    port: int
    state: str
    reason: str | None = None
    description: str | None = None
    availability_zone: str | None = None  # only set by AWS for targets outside the VPC ("all")


@dataclass(frozen=True)
class Permission:
    """One security-group rule (ingress or egress) as the API groups it."""

    protocol: str  # "-1" (all), "tcp", "udp", "icmp" or a number
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...] = ()
    ipv6_cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    prefix_lists: tuple[str, ...] = ()

    def covers_tcp_port(self, port: int) -> bool:
        if self.protocol in ("-1", "all"):
            return True
        if self.protocol not in ("tcp", "6"):
            return False
        lo = self.from_port if self.from_port is not None else 0
        hi = self.to_port if self.to_port is not None else 65535
        return lo <= port <= hi


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    vpc_id: str
    ingress: tuple[Permission, ...] = ()
    egress: tuple[Permission, ...] = ()


@dataclass(frozen=True)
class Subnet:
    id: str
    vpc_id: str
    availability_zone: str
    cidr: str


@dataclass(frozen=True)
class Vpc:
    id: str
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    destination: str  # IPv4 CIDR ("" for IPv6/prefix-list routes, which are not evaluated)
    target: str  # "local", igw-…, nat-…, pcx-…, tgw-…, eni-…
    state: str  # active | blackhole


@dataclass(frozen=True)
class RouteTable:
    id: str
    vpc_id: str
    main: bool
    subnet_ids: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class NaclEntry:
    rule_number: int
    egress: bool
    protocol: str  # "-1" or a protocol number as text ("6" = tcp)
    action: str  # allow | deny
    cidr: str  # IPv4 only; IPv6 entries are skipped by the gatherer
    from_port: int | None = None
    to_port: int | None = None


@dataclass(frozen=True)
class NetworkAcl:
    id: str
    vpc_id: str
    is_default: bool
    subnet_ids: tuple[str, ...]
    entries: tuple[NaclEntry, ...]


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    vpc_id: str | None
    subnet_id: str | None
    availability_zone: str | None
    private_ip: str | None
    security_groups: tuple[str, ...]
    system_status: str | None = None  # ok | impaired | initializing | insufficient-data | None
    instance_status: str | None = None


@dataclass(frozen=True)
class NetworkInterface:
    """The ENI behind an IP target (so IP targets get SG/NACL checks too)."""

    id: str
    private_ip: str
    subnet_id: str
    vpc_id: str
    availability_zone: str
    security_groups: tuple[str, ...]


@dataclass(frozen=True)
class Topology:
    region: str
    load_balancer: LoadBalancer
    listeners: tuple[Listener, ...] = ()
    target_groups: tuple[TargetGroup, ...] = ()
    target_health: dict[str, tuple[TargetHealth, ...]] = field(default_factory=dict)  # by TG ARN
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    route_tables: tuple[RouteTable, ...] = ()
    network_acls: tuple[NetworkAcl, ...] = ()
    instances: dict[str, Instance] = field(default_factory=dict)
    interfaces: dict[str, NetworkInterface] = field(default_factory=dict)  # by private IP
    # When no target group is attached (and none named): the groups in the ALB's VPC attached to
    # no load balancer, one of which is likely the API's.
    unattached_target_groups: tuple[TargetGroup, ...] = ()

    def route_table_for(self, subnet_id: str) -> RouteTable | None:
        """The explicitly associated table, else the VPC's main table (how AWS resolves it)."""
        subnet = self.subnets.get(subnet_id)
        for rt in self.route_tables:
            if subnet_id in rt.subnet_ids:
                return rt
        if subnet is None:
            return None
        return next(
            (rt for rt in self.route_tables if rt.main and rt.vpc_id == subnet.vpc_id), None
        )

    def nacl_for(self, subnet_id: str) -> NetworkAcl | None:
        subnet = self.subnets.get(subnet_id)
        for acl in self.network_acls:
            if subnet_id in acl.subnet_ids:
                return acl
        if subnet is None:
            return None
        return next(
            (a for a in self.network_acls if a.is_default and a.vpc_id == subnet.vpc_id), None
        )


@dataclass(frozen=True)
class Endpoint:
    """Where one registered target lives on the network (an instance or an IP's ENI)."""

    target: TargetHealth
    target_group: TargetGroup
    ip: str | None
    subnet_id: str | None
    vpc_id: str | None
    availability_zone: str | None
    security_groups: tuple[str, ...]
    instance: Instance | None = None

    @property
    def label(self) -> str:
        return f"{self.target.id}:{self.target.port}"


def endpoints(topo: Topology) -> list[Endpoint]:
    """Every registered target of every checked target group, resolved to its network place."""
    out: list[Endpoint] = []
    for tg in topo.target_groups:
        for th in topo.target_health.get(tg.arn, ()):
            inst = topo.instances.get(th.id) if tg.target_type == "instance" else None
            if inst is not None:
                out.append(
                    Endpoint(
                        th,
                        tg,
                        inst.private_ip,
                        inst.subnet_id,
                        inst.vpc_id,
                        inst.availability_zone,
                        inst.security_groups,
                        inst,
                    )
                )
                continue
            eni = topo.interfaces.get(th.id) if tg.target_type == "ip" else None
            if eni is not None:
                out.append(
                    Endpoint(
                        th,
                        tg,
                        eni.private_ip,
                        eni.subnet_id,
                        eni.vpc_id,
                        eni.availability_zone,
                        eni.security_groups,
                    )
                )
                continue
            ip = th.id if tg.target_type == "ip" else None
            out.append(Endpoint(th, tg, ip, None, None, th.availability_zone, ()))
    return out
