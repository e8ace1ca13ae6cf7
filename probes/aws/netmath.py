"""Exact, pure evaluation of the network rules between the ALB and a target.

Network ACLs are ordered first-match rule lists over (source address, destination port); a question
like "is TCP 8000 from the whole ALB subnet allowed?" is answered by walking the rules in order and
cutting the queried (address range x port range) rectangle as rules claim parts of it. No sampling:
the answer says exactly which rule allows or denies which part.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from probes.aws.topology import NetworkAcl, Permission, Route, RouteTable, SecurityGroup

EPHEMERAL = (1024, 65535)
TCP = "6"

Rect = tuple[int, int, int, int]  # address lo, address hi, port lo, port hi (inclusive)


def cidr_range(cidr: str) -> tuple[int, int]:
    net = ipaddress.ip_network(cidr, strict=False)
    return int(net.network_address), int(net.broadcast_address)


def _intersect(a: Rect, b: Rect) -> Rect | None:
    lo_a, hi_a = max(a[0], b[0]), min(a[1], b[1])
    lo_p, hi_p = max(a[2], b[2]), min(a[3], b[3])
    if lo_a > hi_a or lo_p > hi_p:
        return None
    return (lo_a, hi_a, lo_p, hi_p)


def _subtract(a: Rect, b: Rect) -> list[Rect]:
    """a minus b, as at most four disjoint rectangles."""
    cut = _intersect(a, b)
    if cut is None:
        return [a]
    out: list[Rect] = []
    if a[0] < cut[0]:
        out.append((a[0], cut[0] - 1, a[2], a[3]))
    if cut[1] < a[1]:
        out.append((cut[1] + 1, a[1], a[2], a[3]))
    if a[2] < cut[2]:
        out.append((cut[0], cut[1], a[2], cut[2] - 1))
    if cut[3] < a[3]:
        out.append((cut[0], cut[1], cut[3] + 1, a[3]))
    return out


@dataclass(frozen=True)
class NaclVerdict:
    acl_id: str
    allowed: bool  # every address and port of the question is allowed
    allowed_by: tuple[int, ...]  # rule numbers that allow part of it
    denied_by: tuple[int, ...]  # rule numbers that deny part of it (32767 = the final '*' rule)

    @property
    def partial(self) -> bool:
        return bool(self.allowed_by) and bool(self.denied_by)


def evaluate_nacl(
    acl: NetworkAcl, *, egress: bool, cidr: str, ports: tuple[int, int], protocol: str = TCP
) -> NaclVerdict:
    """Is every packet (address in ``cidr``, destination port in ``ports``) allowed by ``acl``?

    ``cidr`` is the remote side: the source for inbound rules, the destination for outbound rules.
    """
    lo, hi = cidr_range(cidr)
    remaining: list[Rect] = [(lo, hi, ports[0], ports[1])]
    allowed_by: list[int] = []
    denied_by: list[int] = []
    rules = sorted((e for e in acl.entries if e.egress == egress), key=lambda e: e.rule_number)
    for e in rules:
        if not remaining:
            break
        if e.protocol not in ("-1", protocol):
            continue
        if e.protocol == "-1" or e.from_port is None:
            p_lo, p_hi = 0, 65535
        else:
            p_lo, p_hi = e.from_port, e.to_port if e.to_port is not None else e.from_port
        r_lo, r_hi = cidr_range(e.cidr)
        rule: Rect = (r_lo, r_hi, p_lo, p_hi)
        hit = False
        nxt: list[Rect] = []
        for rect in remaining:
            if _intersect(rect, rule) is not None:
                hit = True
                nxt.extend(_subtract(rect, rule))
            else:
                nxt.append(rect)
        if hit:
            (allowed_by if e.action == "allow" else denied_by).append(e.rule_number)
        remaining = nxt
    # Whatever no rule matched falls to the implicit final deny ('*', rule 32767).
    if remaining and 32767 not in denied_by:
        denied_by.append(32767)
    return NaclVerdict(acl.id, not denied_by, tuple(allowed_by), tuple(denied_by))


def free_rule_number_below(
    acl: NetworkAcl, *, egress: bool, below: int, taken: Iterable[int] = ()
) -> int | None:
    """The highest rule number below ``below`` that neither ``acl`` nor ``taken`` uses (so a new
    entry evaluates before rule ``below``), or None when there is none."""
    used = {e.rule_number for e in acl.entries if e.egress == egress} | set(taken)
    return next((n for n in range(min(below, 32767) - 1, 0, -1) if n not in used), None)


def _union(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _covered(cidr: str, allowed: list[tuple[int, int]]) -> bool:
    lo, hi = cidr_range(cidr)
    return any(a <= lo and hi <= b for a, b in allowed)


@dataclass(frozen=True)
class SgVerdict:
    ok: bool
    via: str  # which rule admits it, for evidence ("sg-alb", "10.0.0.0/16") or ""
    uncovered_cidrs: tuple[str, ...] = ()


def sg_admits(
    groups: Iterable[SecurityGroup],
    *,
    port: int,
    egress: bool,
    peer_groups: Iterable[str],
    peer_cidrs: Iterable[str],
) -> SgVerdict:
    """Do ``groups`` (rules are a union) let TCP ``port`` in from / out to the peer?

    The peer is admitted if a rule names one of its security groups, or if the rules' IPv4 CIDRs
    together cover every one of its CIDRs (the ALB subnets, or the target's /32).
    """
    peer_groups = set(peer_groups)
    peer_cidrs = list(peer_cidrs)
    perms: list[Permission] = []
    for g in groups:
        perms.extend(g.egress if egress else g.ingress)
    perms = [p for p in perms if p.covers_tcp_port(port)]
    for p in perms:
        hit = peer_groups.intersection(p.groups)
        if hit:
            return SgVerdict(True, f"security group {sorted(hit)[0]}")
    allowed = _union(cidr_range(c) for p in perms for c in p.cidrs)
    uncovered = tuple(c for c in peer_cidrs if not _covered(c, allowed))
    if peer_cidrs and not uncovered:
        via = ", ".join(sorted({c for p in perms for c in p.cidrs}))
        return SgVerdict(True, f"CIDR {via}")
    return SgVerdict(False, "", uncovered if peer_cidrs else ())


def describe_ports(protocol: str, lo: int | None, hi: int | None) -> str:
    """'tcp/8000', 'tcp/1024-65535', 'tcp/all ports' or 'all traffic' (SG and NACL rules)."""
    if protocol in ("-1", "all"):
        return "all traffic"
    proto = {"6": "tcp", "17": "udp", "1": "icmp"}.get(protocol, protocol)
    if lo is None or (lo == 0 and hi in (None, 65535)):
        return f"{proto}/all ports"
    return f"{proto}/{lo}" if hi in (None, lo) else f"{proto}/{lo}-{hi}"


def describe_permission(p: Permission, *, egress: bool) -> str:
    """One rule as an operator reads it: 'tcp/80 from sg-alb', 'all traffic to 0.0.0.0/0'."""
    what = describe_ports(p.protocol, p.from_port, p.to_port)
    peers = [*p.groups, *p.cidrs, *p.ipv6_cidrs, *p.prefix_lists]
    return f"{what} {'to' if egress else 'from'} {', '.join(peers) or 'nowhere'}"


def sg_rules_text(groups: Iterable[SecurityGroup], *, egress: bool) -> str:
    """What the groups admit (or let out), rule by rule, for evidence."""
    groups = list(groups)
    rules = [
        (f"{g.id}: " if len(groups) > 1 else "") + describe_permission(p, egress=egress)
        for g in groups
        for p in (g.egress if egress else g.ingress)
    ]
    return "; ".join(rules) or f"no {'outbound' if egress else 'inbound'} rule at all"


def route_for(rt: RouteTable, cidr: str) -> Route | None:
    """Longest-prefix IPv4 route of ``rt`` that contains the whole of ``cidr``."""
    want = ipaddress.ip_network(cidr, strict=False)
    best: tuple[int, Route] | None = None
    for r in rt.routes:
        if not r.destination:
            continue
        try:
            dest = ipaddress.ip_network(r.destination, strict=False)
        except ValueError:
            continue
        if (
            dest.version == want.version
            and want.subnet_of(dest)  # type: ignore[arg-type]
            and (best is None or dest.prefixlen > best[0])
        ):
            best = (dest.prefixlen, r)
    return best[1] if best else None


def host_cidr(ip: str) -> str:
    return f"{ip}/32"


def contains(cidr: str, ip: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
