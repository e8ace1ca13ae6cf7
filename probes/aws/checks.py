"""The AWS chain checks: small prowler-style units over a gathered Topology (pure, no AWS).

Each check has an id, a section (the runbook's order), a title and a severity, and yields one
Outcome per resource it looked at: a status (pass/fail/warn/error/skip), the evidence it saw
(concrete ids and values) and a remediation (an exact `aws ...` command where one exists).
Checks never call AWS: the remediation is printed, never run.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import wraps
from operator import attrgetter, eq
from typing import TypeVar

from probes.aws import netmath
from probes.aws.reasons import NEXT_STEP, explain
from probes.aws.topology import (
    Endpoint,
    NetworkAcl,
    RouteTable,
    SecurityGroup,
    TargetGroup,
    Topology,
    endpoints,
)

SECTIONS = (
    "load balancer",
    "listeners",
    "target group",
    "targets",
    "security groups",
    "network",
    "instances",
)
SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("pass", "fail", "warn", "error", "skip")


@dataclass(frozen=True)
class Expected:
    """What the API's side of the chain should look like (config [aws] + CLI options)."""

    port: int = 8000
    target_protocol: str = "HTTP"
    scheme: str = "internet-facing"
    health_check_path: str = "/health"
    health_check_port: int | None = None  # None = the traffic port
    matcher: str = "200"
    interval: int = 30
    timeout: int = 5
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    keepalive: float = 2.0  # gunicorn --keep-alive on the targets
    worker_class: str = "sync"
    threads: int = 1
    container: str = "academy-api"
    graceful_timeout: float = 30.0  # gunicorn --graceful-timeout on the targets
    longest_request: float = 0.0  # the longest request the API serves; 0 = not known

    @property
    def keepalive_applies(self) -> bool:
        """gunicorn sync workers answer `Connection: close`: no reuse, so no keep-alive race."""
        return not (self.worker_class == "sync" and self.threads <= 1)


@dataclass(frozen=True)
class Outcome:
    status: str
    resource: str
    evidence: str
    remediation: str = ""
    severity: str | None = None  # overrides the check's default severity for this outcome


@dataclass(frozen=True)
class Finding:
    id: str
    section: str
    title: str
    severity: str
    status: str
    resource: str
    evidence: str
    remediation: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


CheckFn = Callable[[Topology, Expected], Iterable[Outcome]]


@dataclass(frozen=True)
class Check:
    id: str
    section: str
    title: str
    severity: str
    fn: CheckFn


CHECKS: list[Check] = []


def check(id: str, section: str, title: str, severity: str) -> Callable[[CheckFn], CheckFn]:
    assert section in SECTIONS and severity in SEVERITIES, (id, section, severity)

    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(id, section, title, severity, fn))
        return fn

    return register


def run_checks(topo: Topology, expected: Expected) -> list[Finding]:
    """Every check, in the runbook's order (sections, then registration order)."""
    findings: list[Finding] = []
    ordered = sorted(CHECKS, key=lambda c: SECTIONS.index(c.section))  # stable within a section
    for c in ordered:
        try:
            outcomes = list(c.fn(topo, expected))
        except Exception as exc:  # a check bug must show up as an error, not kill the report
            outcomes = [Outcome("error", "-", f"check crashed: {type(exc).__name__}: {exc}")]
        for o in outcomes:
            assert o.status in STATUSES, (c.id, o.status)
            findings.append(
                Finding(
                    c.id,
                    c.section,
                    c.title,
                    o.severity or c.severity,
                    o.status,
                    o.resource,
                    o.evidence,
                    o.remediation,
                )
            )
    return findings


def exit_code(findings: Iterable[Finding]) -> int:
    """0 all pass (warn/skip allowed), 1 a check failed, 2 a check could not be evaluated."""
    statuses = {f.status for f in findings}
    if "fail" in statuses:
        return 1
    if "error" in statuses:
        return 2
    return 0


# ---------------------------------------------------------------------------------------------
# helpers


V = TypeVar("V")  # the type of a compared setting


def _tg_short(arn: str) -> str:
    return arn.split(":")[-1] if arn.startswith("arn:") else arn


def parse_matcher(matcher: str) -> set[int]:
    """'200', '200-299', '200,302' -> the set of accepted codes."""
    codes: set[int] = set()
    for part in matcher.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            codes.update(range(int(lo), int(hi) + 1))
        else:
            codes.add(int(part))
    return codes


def _alb_cidrs(topo: Topology) -> list[tuple[str, str]]:
    """(subnet id, CIDR) of every ALB subnet known to the topology."""
    out = []
    for sid in topo.load_balancer.subnet_ids:
        s = topo.subnets.get(sid)
        if s is not None:
            out.append((sid, s.cidr))
    return out


def _hc_ports(ep: Endpoint) -> list[int]:
    ports = [ep.target.port]
    hc = ep.target_group.health_check_port(ep.target.port)
    if hc not in ports:
        ports.append(hc)
    return ports


def _no_targets(topo: Topology) -> Outcome | None:
    if not topo.target_groups:
        return Outcome("skip", "-", "no target group to check")
    if not any(topo.target_health.get(tg.arn) for tg in topo.target_groups):
        return Outcome("skip", "-", "no registered targets")
    return None


def _needs_targets(fn: CheckFn) -> CheckFn:
    """A check of registered targets: one skip outcome instead when there are none."""

    @wraps(fn)
    def guarded(topo: Topology, exp: Expected) -> Iterator[Outcome]:
        skipped = _no_targets(topo)
        if skipped:
            yield skipped
        else:
            yield from fn(topo, exp)

    return guarded


def _groups(topo: Topology, ids: Iterable[str]) -> list[SecurityGroup]:
    """The known security groups among `ids` (unknown ones are left out)."""
    return [topo.security_groups[g] for g in ids if g in topo.security_groups]


def _var(name: str) -> str:
    """A value only the operator knows, as a shell variable that refuses to run while unset.

    (`<bucket>` would be a redirect in bash; "${BUCKET:?}" stops with 'BUCKET: parameter null or
    not set'.)"""
    return f'"${{{name}:?}}"'


def _follows(resource: str, evidence: str, cause: str) -> Outcome:
    """A finding another failing check explains: shown, but the fix is printed once, by `cause`."""
    return Outcome("skip", resource, f"{evidence} -> follows from {cause} (its fix is there)")


def _routed_hops(topo: Topology, ep: Endpoint) -> list[str]:
    """`subnet->next hop` of each ALB subnet whose route table routes to the target off-VPC."""
    hops = []
    for sid, _ in _alb_cidrs(topo):
        rt = topo.route_table_for(sid)
        r = netmath.route_for(rt, netmath.host_cidr(ep.ip)) if rt and ep.ip else None
        if r and r.state == "active" and r.target != "local":
            hops.append(f"{sid}->{r.target}")
    return hops


def _unreachable(topo: Topology, ep: Endpoint) -> bool:
    """In another VPC that not every ALB subnet routes to (net.same_vpc fails)."""
    lb = topo.load_balancer
    if ep.vpc_id is None or ep.vpc_id == lb.vpc_id:
        return False
    return len(_routed_hops(topo, ep)) != len(lb.subnet_ids) or not lb.subnet_ids


def _instance_down(ep: Endpoint) -> bool:
    """An instance target that is gone or stopped (instance.running fails)."""
    if ep.target_group.target_type != "instance":
        return False
    return ep.instance is None or ep.instance.state not in ("running", "pending")


def _az_off(topo: Topology, ep: Endpoint) -> bool:
    """In an Availability Zone the ALB is not enabled in (net.target_az fails)."""
    az = ep.availability_zone
    return az is not None and az != "all" and az not in topo.load_balancer.availability_zones


def _cause(topo: Topology, ep: Endpoint) -> str | None:
    """The check that reports why this target cannot serve, when one does."""
    if _unreachable(topo, ep):
        return "net.same_vpc"
    if _instance_down(ep):
        return "instance.running"
    if _az_off(topo, ep):
        return "net.target_az"
    return None


# ---------------------------------------------------------------------------------------------
# load balancer


@check("alb.state", "load balancer", "Load balancer is active", "critical")
def _alb_state(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    ev = f"{lb.name} ({lb.type}) state={lb.state}" + (
        f" reason={lb.state_reason}" if lb.state_reason else ""
    )
    if lb.state == "active":
        yield Outcome("pass", lb.name, ev)
    elif lb.state == "provisioning":
        yield Outcome("warn", lb.name, ev, "wait until the state is active, then check again")
    else:
        yield Outcome(
            "fail",
            lb.name,
            ev,
            f"aws elbv2 describe-load-balancers --load-balancer-arns {lb.arn} "
            "--query 'LoadBalancers[0].State'  # investigate; open an AWS support case if failed",
        )


@check("alb.scheme", "load balancer", "Scheme matches how browsers reach it", "medium")
def _alb_scheme(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    ev = f"scheme={lb.scheme} (expected {exp.scheme}), DNS {lb.dns_name}"
    if lb.scheme == exp.scheme:
        yield Outcome("pass", lb.name, ev)
    else:
        why = (
            "an internal ALB is not reachable from browsers on the internet"
            if lb.scheme == "internal"
            else "an internet-facing ALB where an internal one was expected"
        )
        yield Outcome(
            "warn",
            lb.name,
            f"{ev}: {why}",
            "the scheme cannot be changed in place: create a load balancer with --scheme "
            f"{exp.scheme}, or set [aws] scheme in albprobe.toml if this is intended",
        )


@check(
    "alb.idle_timeout",
    "load balancer",
    "Backend keep-alive outlives the ALB idle timeout",
    "medium",
)
def _alb_idle_timeout(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    idle = lb.idle_timeout
    src = "AWS default, attribute not set" if lb.idle_timeout_is_default else "attribute"
    ev = (
        f"ALB idle_timeout.timeout_seconds={idle:g}s ({src}); backend keep-alive "
        f"{exp.keepalive:g}s, gunicorn worker_class={exp.worker_class} threads={exp.threads}"
    )
    if exp.keepalive > idle:
        yield Outcome("pass", lb.name, ev)
    elif not exp.keepalive_applies:
        yield Outcome(
            "pass",
            lb.name,
            f"{ev}; sync workers answer 'Connection: close', so the ALB never reuses a "
            "connection and the keep-alive race cannot happen",
        )
    else:
        fix = f"set gunicorn --keep-alive {int(idle) + 5} (longer than the ALB idle timeout)"
        if exp.keepalive > 15:  # lowering the ALB timeout to a few seconds is no real fix
            fix += (
                f", or lower the ALB idle timeout: aws elbv2 modify-load-balancer-attributes "
                f"--load-balancer-arn {lb.arn} --attributes "
                f"Key=idle_timeout.timeout_seconds,Value={int(exp.keepalive) - 1}"
            )
        yield Outcome(
            "fail",
            lb.name,
            f"{ev}: the target may close an idle connection the ALB is about to reuse "
            "-> sporadic 502s at low load",
            fix,
        )


@check("alb.access_logs", "load balancer", "Access logs are enabled (evidence for analyze)", "low")
def _alb_access_logs(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    a = lb.attributes
    enabled = a.get("access_logs.s3.enabled", "false") == "true"
    bucket = a.get("access_logs.s3.bucket", "")
    prefix = a.get("access_logs.s3.prefix", "")
    if enabled and bucket:
        where = f"s3://{bucket}/{prefix}".rstrip("/")
        yield Outcome("pass", lb.name, f"access logs go to {where}")
    else:
        yield Outcome(
            "warn",
            lb.name,
            f"access_logs.s3.enabled={a.get('access_logs.s3.enabled', 'unset')}: no per-request "
            "record of which 502s the ALB generated",
            f"aws elbv2 modify-load-balancer-attributes --load-balancer-arn {lb.arn} --attributes "
            "Key=access_logs.s3.enabled,Value=true "
            f"Key=access_logs.s3.bucket,Value={_var('LOG_BUCKET')}  # LOG_BUCKET: an S3 bucket "
            "whose policy allows ELB log delivery (albprobe cannot know which one you want)",
        )


# ---------------------------------------------------------------------------------------------
# listeners


def _forward_fix(topo: Topology, tg_arn: str) -> str:
    """Send the API's traffic to `tg_arn`: the HTTPS listener's (else the first one's) default
    action, or a new HTTP:80 listener when there is none."""
    lb = topo.load_balancer
    action = f"--default-actions Type=forward,TargetGroupArn={tg_arn}"
    if not topo.listeners:
        return (
            f"aws elbv2 create-listener --load-balancer-arn {lb.arn} --protocol HTTP --port 80 "
            f"{action}"
        )
    lst = next((x for x in topo.listeners if x.protocol == "HTTPS"), topo.listeners[0])
    return f"aws elbv2 modify-listener --listener-arn {lst.arn} {action}"


def _forwarders(topo: Topology, tg: TargetGroup) -> list[str]:
    """The listener default actions and rules that forward to `tg`, for evidence."""
    via: list[str] = []
    for lst in topo.listeners:
        if any(tg.arn in a.target_groups for a in lst.default_actions if a.type == "forward"):
            via.append(f"{lst.protocol}:{lst.port} default action")
        for r in lst.rules:
            if r.is_default:
                continue
            if any(tg.arn in a.target_groups for a in r.actions if a.type == "forward"):
                via.append(f"{lst.protocol}:{lst.port} rule {r.priority} ({r.conditions})")
    return via


@check("listener.forwards", "listeners", "A listener forwards to the target group", "critical")
def _listener_forwards(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    if not topo.target_groups:
        yield Outcome("skip", lb.name, "no target group to look for")
        return
    if not topo.listeners:
        yield Outcome(
            "fail",
            lb.name,
            f"{lb.name} has no listeners: it accepts no traffic",
            _forward_fix(topo, topo.target_groups[0].arn),
        )
        return
    for tg in topo.target_groups:
        via = _forwarders(topo, tg)
        if via:
            yield Outcome("pass", tg.name, "forwarded by " + "; ".join(via))
            continue
        seen = "; ".join(
            f"{lst.protocol}:{lst.port} default "
            + ",".join(
                f"{a.type}->{'+'.join(_tg_short(t) for t in a.target_groups) or a.detail or '-'}"
                for a in lst.default_actions
            )
            for lst in topo.listeners
        )
        yield Outcome(
            "fail",
            tg.name,
            f"no listener default action or rule forwards to {tg.name}; listeners: {seen}",
            _forward_fix(topo, tg.arn),
        )


# ---------------------------------------------------------------------------------------------
# target group


@check("tg.exists", "target group", "A target group is attached", "critical")
def _tg_exists(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    if not topo.target_groups:
        spare = topo.unattached_target_groups
        ev = f"no target group is attached to {lb.name} (no listener forwards to one)"
        if len(spare) == 1:  # the API's group, left unattached: attach it
            yield Outcome(
                "fail",
                lb.name,
                f"{ev}; {spare[0].name} in {lb.vpc_id} is attached to no load balancer",
                _forward_fix(topo, spare[0].arn),
            )
        elif spare:
            names = ", ".join(t.name for t in spare)
            yield Outcome(
                "fail",
                lb.name,
                f"{ev}; unattached target groups in {lb.vpc_id}: {names} (name the API's with "
                "--target-group to check it)",
                _forward_fix(topo, _var("TG_ARN"))
                + f"  # TG_ARN: the ARN of the API's target group, one of {names}",
            )
        else:
            yield Outcome(
                "fail",
                lb.name,
                f"{ev}, and {lb.vpc_id} has no unattached target group",
                f"aws elbv2 create-target-group --name {_var('TG_NAME')} --protocol HTTP "
                f"--port {exp.port} --vpc-id {lb.vpc_id} --health-check-path "
                f"{exp.health_check_path}  # TG_NAME: a name for the API's group; then forward a "
                "listener to it and register the API instances",
            )
        return
    for tg in topo.target_groups:
        ev = f"{tg.name} type={tg.target_type} vpc={tg.vpc_id}"
        if lb.arn in tg.load_balancer_arns or _forwarders(topo, tg):
            yield Outcome("pass", tg.name, f"{ev}, attached to {lb.name}")
        else:  # named with --target-group, but no listener of this ALB forwards to it
            lbs = ",".join(_tg_short(a) for a in tg.load_balancer_arns) or "none"
            yield _follows(
                tg.name,
                f"{ev} load balancers={lbs}: not attached to {lb.name}",
                "listener.forwards",
            )


def _modify_tg(tg_arn: str, option: str) -> str:
    return f"aws elbv2 modify-target-group --target-group-arn {tg_arn} {option}"


@dataclass(frozen=True)
class _Off:
    """How a target group whose setting differs from the expected one is reported."""

    status: str = "fail"
    why: str = ""  # appended to the evidence
    severity: str | None = None  # None: the check's own


_WARN = _Off("warn")


def _compare_tg_setting(
    topo: Topology,
    setting: str,
    actual: Callable[[TargetGroup], V],
    expected: V,
    fix: str | Callable[[TargetGroup], str],
    *,
    off: _Off | Callable[[V], _Off] = _Off(),
    same: Callable[[V, V], bool] = eq,
    shown: Callable[[TargetGroup, V], object] | None = None,
) -> Iterator[Outcome]:
    """One outcome per target group, evidence `setting=actual (expected X)`: pass when the same.

    fix: the `modify-target-group` flag that sets the expected value, or a function of the group
    giving the whole command.
    off: how a different value is reported (or a function of the value giving that).
    shown: what the evidence shows for the actual value, when not the compared value itself.
    """
    for tg in topo.target_groups:
        got = actual(tg)
        ev = f"{setting}={got if shown is None else shown(tg, got)} (expected {expected})"
        if same(got, expected):
            yield Outcome("pass", tg.name, ev)
            continue
        o = off(got) if callable(off) else off
        cmd = (
            _modify_tg(tg.arn, f"{fix} {shlex.quote(str(expected))}")  # a path may hold ? or &
            if isinstance(fix, str)
            else fix(tg)
        )
        yield Outcome(o.status, tg.name, ev + o.why, cmd, o.severity)


def _register_fix(tg: TargetGroup, ids: Iterable[str], port: int) -> str:
    """Register `ids` (or the API instance, which only the operator knows) on `port`."""
    targets = " ".join(f"Id={i},Port={port}" for i in dict.fromkeys(ids))
    cmd = f"aws elbv2 register-targets --target-group-arn {tg.arn} --targets "
    if targets:
        return cmd + targets
    return cmd + f"Id={_var('INSTANCE_ID')},Port={port}  # INSTANCE_ID: the API instance"


@check("tg.port", "target group", "Target group port is the API port", "high")
def _tg_port(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    def fix(tg: TargetGroup) -> str:
        return (
            _register_fix(tg, [t.id for t in topo.target_health.get(tg.arn, ())], exp.port)
            + "  # a target group's port cannot be changed; targets registered with a port use it"
        )

    yield from _compare_tg_setting(topo, "port", attrgetter("port"), exp.port, fix)


@check("tg.protocol", "target group", "Target group protocol is what gunicorn speaks", "high")
def _tg_protocol(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    want = exp.target_protocol
    fix = (
        f"create a target group with --protocol {want} --port {exp.port} "
        "and point the listener at it (the protocol cannot be changed in place)"
    )
    yield from _compare_tg_setting(
        topo,
        "protocol",
        attrgetter("protocol"),
        want,
        lambda _tg: fix,
        off=lambda got: _Off(
            why=f": the ALB speaks {got} to a target that speaks {want} -> handshake errors, 502"
        ),
    )


@check("tg.health_check.enabled", "target group", "Health checks are enabled", "medium")
def _hc_enabled(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for tg in topo.target_groups:
        if tg.health_check.enabled:
            yield Outcome("pass", tg.name, "health checks enabled")
        else:
            yield Outcome(
                "warn",
                tg.name,
                "health checks disabled: the ALB keeps sending traffic to dead targets",
                _modify_tg(tg.arn, "--health-check-enabled"),
            )


@check("tg.health_check.protocol", "target group", "Health check protocol", "high")
def _hc_protocol(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    actual = attrgetter("health_check.protocol")
    yield from _compare_tg_setting(
        topo, "health check protocol", actual, exp.target_protocol, "--health-check-protocol"
    )


@check("tg.health_check.path", "target group", "Health check path", "high")
def _hc_path(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    actual = attrgetter("health_check.path")
    yield from _compare_tg_setting(
        topo, "health check path", actual, exp.health_check_path, "--health-check-path"
    )


@check("tg.health_check.port", "target group", "Health check port", "high")
def _hc_port(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    want = exp.health_check_port or exp.port

    def port(tg: TargetGroup) -> int:  # not tg.health_check_port(): "" must stay an error here
        return tg.port if tg.health_check.port == "traffic-port" else int(tg.health_check.port)

    def fix(tg: TargetGroup) -> str:
        opt = "traffic-port" if want == tg.port else str(want)
        return _modify_tg(tg.arn, f"--health-check-port {opt}")

    yield from _compare_tg_setting(
        topo,
        "health check port",
        port,
        want,
        fix,
        shown=lambda tg, p: f"{tg.health_check.port} -> {p}",
    )


@check("tg.health_check.matcher", "target group", "Health check success codes", "high")
def _hc_matcher(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    want = parse_matcher(exp.matcher)
    wider = _Off(
        "warn",
        ": wider than expected; errors such as Django's 400 DisallowedHost may count as healthy",
        severity="low",
    )
    narrower = _Off("fail", f": /health answering {exp.matcher} would be counted unhealthy")
    yield from _compare_tg_setting(
        topo,
        "matcher",
        attrgetter("health_check.matcher"),
        exp.matcher,
        lambda tg: _modify_tg(tg.arn, f"--matcher HttpCode={exp.matcher}"),
        same=lambda got, _: parse_matcher(got) == want,  # '200-201' is '200,201'
        off=lambda got: wider if want <= parse_matcher(got) else narrower,
    )


def _hc_number(field: str, option: str, title: str) -> None:
    @check(f"tg.health_check.{field}", "target group", title, "low")
    def _fn(topo: Topology, exp: Expected) -> Iterator[Outcome]:
        actual = attrgetter(f"health_check.{field}")
        yield from _compare_tg_setting(topo, field, actual, getattr(exp, field), option, off=_WARN)


_hc_number("interval", "--health-check-interval-seconds", "Health check interval")
_hc_number("timeout", "--health-check-timeout-seconds", "Health check timeout")
_hc_number("healthy_threshold", "--healthy-threshold-count", "Healthy threshold")
_hc_number("unhealthy_threshold", "--unhealthy-threshold-count", "Unhealthy threshold")


# ---------------------------------------------------------------------------------------------
# targets


@check("tg.targets_registered", "targets", "Targets are registered", "critical")
def _targets_registered(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for tg in topo.target_groups:
        ths = topo.target_health.get(tg.arn, ())
        if ths:
            yield Outcome(
                "pass", tg.name, f"{len(ths)} registered: " + ", ".join(t.id for t in ths)
            )
        else:
            yield Outcome(
                "fail",
                tg.name,
                f"{tg.name} has no registered targets: the ALB answers 503",
                _register_fix(tg, (), exp.port),
            )


_STATE_STATUS = {
    "healthy": "pass",
    "initial": "warn",
    "draining": "warn",
    "unhealthy": "fail",
    "unhealthy.draining": "fail",
    "unused": "fail",
    "unavailable": "warn",
}


@check("target.health", "targets", "Target is healthy", "critical")
def _target_health(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for ep in endpoints(topo):
        th, tg = ep.target, ep.target_group
        ev = f"{tg.name}: {ep.label} state={th.state}"
        if th.reason:
            ev += f" reason={th.reason} ({explain(th.reason)})"
        if th.description:
            ev += f"; AWS says: {th.description}"
        status = _STATE_STATUS.get(th.state, "warn")
        cause = _cause(topo, ep) if status != "pass" else None
        if cause:
            yield _follows(ep.label, ev, cause)
            continue
        fix = ""
        if status != "pass":
            tmpl = NEXT_STEP.get(th.reason or "", "")
            fix = tmpl.format(
                ip=ep.ip or _var("TARGET_IP"),
                port=tg.health_check_port(th.port),
                path=tg.health_check.path,
                matcher=tg.health_check.matcher,
                container=exp.container,
                tg=tg.arn,
                id=th.id,
            )
        yield Outcome(status, ep.label, ev, fix)


@check("target.port", "targets", "Target is registered on the API port", "high")
def _target_port(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for ep in endpoints(topo):
        th = ep.target
        ev = f"{th.id} registered on port {th.port} (expected {exp.port})"
        if th.port == exp.port:
            yield Outcome("pass", ep.label, ev)
        else:
            tg = ep.target_group
            yield Outcome(
                "fail",
                ep.label,
                ev,
                f"aws elbv2 register-targets --target-group-arn {tg.arn} "
                f"--targets Id={th.id},Port={exp.port} && aws elbv2 deregister-targets "
                f"--target-group-arn {tg.arn} --targets Id={th.id},Port={th.port}",
            )


@check("tg.fail_open", "targets", "Not every target is unhealthy (fail-open)", "critical")
def _fail_open(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for tg in topo.target_groups:
        ths = topo.target_health.get(tg.arn, ())
        if not ths:
            yield Outcome("skip", tg.name, "no registered targets (see tg.targets_registered)")
            continue
        states = ", ".join(f"{t.id}={t.state}" for t in ths)
        healthy = [t for t in ths if t.state == "healthy"]
        unhealthy = [t for t in ths if t.state.startswith("unhealthy")]
        causes = {
            _cause(topo, ep)
            for ep in endpoints(topo)
            if ep.target_group.arn == tg.arn and ep.target.state != "healthy"
        }
        if not healthy and None not in causes:  # every target is down for a reason found later
            yield _follows(
                tg.name, f"no healthy target ({states})", ", ".join(sorted(c for c in causes if c))
            )
        elif healthy:
            yield Outcome(
                "pass",
                tg.name,
                f"{len(healthy)} of {len(ths)} healthy; the ALB routes only to healthy targets "
                f"({states})",
            )
        elif len(unhealthy) == len(ths):
            yield Outcome(
                "fail",
                tg.name,
                f"every target is unhealthy ({states}): the ALB fails open and sends traffic to "
                "all of them anyway -> browsers get 502/504 without CORS headers; the causes and "
                "fixes are under target.health",
            )
        else:
            yield Outcome(
                "fail",
                tg.name,
                f"no healthy target ({states}): requests fail (503 when every target is unused); "
                "the causes and fixes are under target.health",
            )


@check(
    "target.health.allowed_hosts",
    "targets",
    "Health checks are not rejected by Django ALLOWED_HOSTS",
    "high",
)
@_needs_targets
def _allowed_hosts(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    mismatched = [ep for ep in endpoints(topo) if ep.target.reason == "Target.ResponseCodeMismatch"]
    if not mismatched:
        yield Outcome(
            "pass", "-", "no target fails its health check with Target.ResponseCodeMismatch"
        )
        return
    for ep in mismatched:
        cause = _cause(topo, ep)
        if cause or not ep.ip:  # no IP: the instance is gone (instance.running)
            yield _follows(ep.label, "Target.ResponseCodeMismatch", cause or "instance.running")
            continue
        port = ep.target_group.health_check_port(ep.target.port)
        host = f"{ep.ip}:{port}"
        yield Outcome(
            "fail",
            ep.label,
            f"health checks get a non-{ep.target_group.health_check.matcher} answer. The ALB "
            f"health checker sends 'Host: {host}' (the target's private IP); Django answers 400 "
            "DisallowedHost when that IP is not in ALLOWED_HOSTS",
            f"add the instance's private IP to ALLOWED_HOSTS at startup (e.g. from "
            f"http://169.254.169.254/latest/meta-data/local-ipv4) or exempt "
            f"{ep.target_group.health_check.path} from host validation; verify with "
            f"curl -i -H 'Host: {host}' http://{host}{ep.target_group.health_check.path}",
        )


# ---------------------------------------------------------------------------------------------
# security groups


@check("sg.alb_listener_ingress", "security groups", "ALB security group admits browsers", "high")
def _sg_alb_listener(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    groups = _groups(topo, lb.security_groups)
    if not lb.security_groups:
        yield Outcome("skip", lb.name, "the load balancer has no security groups")
        return
    if not topo.listeners:
        yield Outcome("skip", lb.name, "no listeners (see listener.forwards)")
        return
    sgs = ",".join(lb.security_groups)
    for lst in topo.listeners:
        res = f"{sgs} ({lb.name}:{lst.port})"
        world = netmath.sg_admits(
            groups, port=lst.port, egress=False, peer_groups=(), peer_cidrs=["0.0.0.0/0"]
        )
        any_rule = [p for g in groups for p in g.ingress if p.covers_tcp_port(lst.port)]
        ev = f"{sgs} inbound tcp/{lst.port}"
        if world.ok:
            yield Outcome("pass", res, f"{ev} open to 0.0.0.0/0")
        elif any_rule:
            srcs = sorted(
                {c for p in any_rule for c in p.cidrs}
                | {g for p in any_rule for g in p.groups}
                | {pl for p in any_rule for pl in p.prefix_lists}
            )
            status = "warn" if lb.scheme == "internet-facing" else "pass"
            yield Outcome(status, res, f"{ev} only from {', '.join(srcs)}")
        else:
            yield Outcome(
                "fail",
                res,
                f"{ev}: no rule admits the listener port; browsers time out. What {sgs} "
                f"admits: {netmath.sg_rules_text(groups, egress=False)}",
                f"aws ec2 authorize-security-group-ingress --group-id {lb.security_groups[0]} "
                f"--protocol tcp --port {lst.port} --cidr 0.0.0.0/0",
            )


def _ip_permission(port: int, *, groups: Iterable[str] = (), cidrs: Iterable[str] = ()) -> str:
    """One --ip-permissions value, single-quoted: [ ] and { } are glob/brace syntax in bash."""
    peers = [f"UserIdGroupPairs=[{{GroupId={g}}}]" for g in groups]
    ranges = ",".join(f"{{CidrIp={c}}}" for c in cidrs)
    if ranges:
        peers.append(f"IpRanges=[{ranges}]")
    return f"'IpProtocol=tcp,FromPort={port},ToPort={port},{','.join(peers)}'"


@check(
    "sg.target_port_from_alb",
    "security groups",
    "API security group admits the target port from the ALB",
    "critical",
)
@_needs_targets
def _sg_target_from_alb(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    alb_cidrs = [c for _, c in _alb_cidrs(topo)]
    for ep in endpoints(topo):
        sgs = ",".join(ep.security_groups)
        res = f"{sgs} ({ep.label})" if sgs else ep.label
        if _unreachable(topo, ep):
            yield _follows(res, f"{ep.target.id} is in {ep.vpc_id}", "net.same_vpc")
            continue
        if not ep.security_groups:
            yield Outcome(
                "skip", ep.label, "target's security groups unknown (not an instance/ENI)"
            )
            continue
        groups = _groups(topo, ep.security_groups)
        for port in _hc_ports(ep):
            v = netmath.sg_admits(
                groups,
                port=port,
                egress=False,
                peer_groups=lb.security_groups,
                peer_cidrs=alb_cidrs,
            )
            ev = f"{sgs} inbound tcp/{port} for {ep.target.id}"
            if v.ok:
                yield Outcome("pass", res, f"{ev} from {v.via}")
                continue
            extra = (
                f" (ALB subnets not covered: {', '.join(v.uncovered_cidrs)})"
                if v.uncovered_cidrs
                else ""
            )
            if lb.security_groups:
                source = f"--protocol tcp --port {port} --source-group {lb.security_groups[0]}"
            else:  # an ALB without security groups: admit its subnets
                source = f"--ip-permissions {_ip_permission(port, cidrs=alb_cidrs)}"
            yield Outcome(
                "fail",
                res,
                f"{ev}: no rule admits it from the ALB security group "
                f"{','.join(lb.security_groups) or '-'} or the ALB subnets{extra} -> the ALB "
                "cannot connect: 502/504 and failing health checks. What "
                f"{sgs} admits: {netmath.sg_rules_text(groups, egress=False)}",
                f"aws ec2 authorize-security-group-ingress --group-id {ep.security_groups[0]} "
                + source,
            )


@check(
    "sg.alb_egress_to_target",
    "security groups",
    "ALB security group lets traffic out to the target",
    "high",
)
@_needs_targets
def _sg_alb_egress(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    groups = _groups(topo, lb.security_groups)
    sgs = ",".join(lb.security_groups)
    for ep in endpoints(topo):
        res = f"{sgs} ({ep.label})" if sgs else ep.label
        if not lb.security_groups:
            yield Outcome("skip", res, "the load balancer has no security groups")
            continue
        if not ep.ip:
            yield Outcome("skip", res, "target IP unknown")
            continue
        if _unreachable(topo, ep):
            yield _follows(res, f"{ep.target.id} is in {ep.vpc_id}", "net.same_vpc")
            continue
        for port in _hc_ports(ep):
            v = netmath.sg_admits(
                groups,
                port=port,
                egress=True,
                peer_groups=ep.security_groups,
                peer_cidrs=[netmath.host_cidr(ep.ip)],
            )
            ev = f"{sgs} outbound tcp/{port} to {ep.ip}"
            if v.ok:
                yield Outcome("pass", res, f"{ev} via {v.via}")
            else:
                dest = (
                    _ip_permission(port, groups=ep.security_groups[:1])
                    if ep.security_groups
                    else _ip_permission(port, cidrs=[netmath.host_cidr(ep.ip)])
                )
                yield Outcome(
                    "fail",
                    res,
                    f"{ev}: no egress rule allows it. What {sgs} lets out: "
                    f"{netmath.sg_rules_text(groups, egress=True)}",
                    f"aws ec2 authorize-security-group-egress --group-id {lb.security_groups[0]} "
                    f"--ip-permissions {dest}",
                )


# ---------------------------------------------------------------------------------------------
# network: VPC, AZ, routes, NACLs


@check("net.same_vpc", "network", "Target is in the ALB's VPC (or a routed one)", "critical")
@_needs_targets
def _same_vpc(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    for ep in endpoints(topo):
        if ep.vpc_id is None:
            yield Outcome("skip", ep.label, f"VPC of {ep.target.id} unknown")
            continue
        ev = f"{ep.target.id} in {ep.vpc_id}, ALB in {lb.vpc_id}, target group in {ep.target_group.vpc_id}"
        if ep.vpc_id == lb.vpc_id:
            yield Outcome("pass", ep.label, ev)
            continue
        # Another VPC: it can only work when every ALB subnet routes to it (peering / TGW).
        tg = ep.target_group
        if not _unreachable(topo, ep):
            yield Outcome(
                "warn",
                ep.label,
                f"{ev}; routed via {', '.join(_routed_hops(topo, ep))} (instance targets must be "
                "in the target group's VPC; across VPCs register them by IP)",
                f"aws elbv2 register-targets --target-group-arn {_var('IP_TG_ARN')} --targets "
                f"Id={ep.ip},Port={ep.target.port}  # IP_TG_ARN: an ip-type target group in "
                f"{lb.vpc_id}; then deregister {ep.target.id} here",
            )
        else:
            yield Outcome(
                "fail",
                ep.label,
                f"{ev}; no route from the ALB subnets to {ep.ip or 'the target'}: the ALB cannot "
                "reach it",
                f"aws elbv2 deregister-targets --target-group-arn {tg.arn} --targets "
                f"Id={ep.target.id},Port={ep.target.port}  # to serve from it, run the API in "
                f"{lb.vpc_id} (or peer the VPCs and register it by IP)",
            )


def _is_public(topo: Topology, subnet_id: str) -> bool:
    rt = topo.route_table_for(subnet_id)
    r = netmath.route_for(rt, "0.0.0.0/0") if rt else None
    return r is not None and r.state == "active" and r.target.startswith("igw-")


@check("net.target_az", "network", "Target's Availability Zone is enabled on the ALB", "high")
@_needs_targets
def _target_az(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    public = any(_is_public(topo, s) for s in lb.subnet_ids)
    for ep in endpoints(topo):
        az = ep.availability_zone
        ev = f"{ep.target.id} in {az or 'unknown AZ'}; ALB AZs {', '.join(lb.availability_zones)}"
        if az is None:
            yield Outcome("skip", ep.label, ev)
        elif not _az_off(topo, ep):
            yield Outcome("pass", ep.label, ev)
        else:
            # A subnet of the ALB's VPC in that AZ, public like the ALB's own subnets.
            fits = sorted(
                s.id
                for s in topo.subnets.values()
                if s.vpc_id == lb.vpc_id
                and s.availability_zone == az
                and _is_public(topo, s.id) == public
            )
            kind = "public " if public else ""
            cmd = (
                f"aws elbv2 set-subnets --load-balancer-arn {lb.arn} --subnets "
                f"{' '.join(lb.subnet_ids)} "
            )
            if len(fits) == 1:
                cmd += fits[0]
            else:
                cmd += (
                    f"{_var('SUBNET_ID')}  # SUBNET_ID: a {kind}subnet of {lb.vpc_id} in {az}"
                    + (f", one of {', '.join(fits)}" if fits else " (there is none yet)")
                )
            yield Outcome(
                "fail",
                ep.label,
                f"{ev}: the ALB does not route to targets in {az} (Target.NotInUse); "
                f"{kind}subnets of {lb.vpc_id} in {az}: {', '.join(fits) or 'none'}",
                cmd,
            )


_ROUTE_TARGET = {"pcx-": "--vpc-peering-connection-id", "tgw-": "--transit-gateway-id"}


def _route_fix(rt: RouteTable, cidr: str, via: str | None) -> tuple[str, bool]:
    """(the create-route/replace-route command, whether it needs the LINK_ID placeholder)."""
    old = next((r for r in rt.routes if r.destination == cidr), None)
    verb = "replace-route" if old else "create-route"
    opt = _ROUTE_TARGET.get((via or "")[:4])
    hop = f"{opt} {via}" if opt else f"--vpc-peering-connection-id {_var('LINK_ID')}"
    return (
        f"aws ec2 {verb} --route-table-id {rt.id} --destination-cidr-block {cidr} {hop}",
        not opt,
    )


@check("net.routes", "network", "Route tables connect ALB subnets and the target", "high")
@_needs_targets
def _routes(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    alb = _alb_cidrs(topo)
    for ep in endpoints(topo):
        if not ep.ip or not ep.subnet_id:
            yield Outcome("skip", ep.label, "target IP/subnet unknown")
            continue
        if _unreachable(topo, ep):
            yield _follows(ep.label, f"{ep.target.id} is in {ep.vpc_id}", "net.same_vpc")
            continue
        problems, seen, cmds = [], [], []
        placeholder = False
        target_cidr = netmath.host_cidr(ep.ip)
        for sid, cidr in alb:
            rt = topo.route_table_for(sid)
            r = netmath.route_for(rt, target_cidr) if rt else None
            if r is None or r.state != "active":
                problems.append(
                    f"{sid} ({rt.id if rt else 'no route table'}) has no active route to {ep.ip}"
                    + (f" (route via {r.target} is {r.state})" if r else "")
                )
                if rt:
                    cmd, ph = _route_fix(rt, r.destination if r else target_cidr, None)
                    cmds.append(cmd)
                    placeholder |= ph
            else:
                seen.append(f"{sid}->{ep.ip} via {r.target}")
            back_rt = topo.route_table_for(ep.subnet_id)
            b = netmath.route_for(back_rt, cidr) if back_rt else None
            if b is None or b.state != "active":
                problems.append(
                    f"{ep.subnet_id} ({back_rt.id if back_rt else 'no route table'}) has no "
                    f"active route back to the ALB subnet {cidr}"
                )
                if back_rt:  # back over the link the forward route uses, when there is one
                    cmd, ph = _route_fix(back_rt, b.destination if b else cidr, r and r.target)
                    cmds.append(cmd)
                    placeholder |= ph
            else:
                seen.append(f"{ep.subnet_id}->{cidr} via {b.target}")
        if problems:
            note = (
                "  # LINK_ID: the VPC peering connection between the VPCs (for a transit "
                "gateway use --transit-gateway-id)"
                if placeholder
                else ""
            )
            yield Outcome(
                "fail",
                ep.label,
                "; ".join(problems),
                " && ".join(dict.fromkeys(cmds)) + note
                if cmds
                else "associate a route table with the subnet, or place the target in the "
                "ALB's VPC",
            )
        else:
            yield Outcome("pass", ep.label, "; ".join(seen))


# The four NACL legs of ALB<->target traffic, in check order: (side, egress, ephemeral ports).
_NACL_LEGS = (
    ("target", False, False),
    ("target", True, True),
    ("alb", True, False),
    ("alb", False, True),
)


@dataclass(frozen=True)
class _NaclQuery:
    """One question to one ACL: may `ports` pass in from / out to `remote`?"""

    subnet_id: str  # whose ACL is asked
    acl: NetworkAcl | None
    egress: bool
    remote: str
    ports: tuple[int, int]
    same_subnet: bool = False  # ALB and target share the subnet: NACLs do not apply

    @property
    def key(self) -> tuple[str, bool, str, tuple[int, int]]:
        return (self.acl.id if self.acl else "", self.egress, self.remote, self.ports)

    def verdict(self) -> netmath.NaclVerdict:
        assert self.acl is not None
        return netmath.evaluate_nacl(
            self.acl, egress=self.egress, cidr=self.remote, ports=self.ports
        )


def _nacl_queries(
    topo: Topology, ep: Endpoint, side: str, egress: bool, ephemeral: bool
) -> Iterator[_NaclQuery]:
    assert ep.ip and ep.subnet_id
    for alb_sid, alb_cidr in _alb_cidrs(topo):
        if alb_sid == ep.subnet_id:
            yield _NaclQuery(alb_sid, None, egress, alb_cidr, (0, 0), same_subnet=True)
            continue
        subnet_id = ep.subnet_id if side == "target" else alb_sid
        remote = alb_cidr if side == "target" else netmath.host_cidr(ep.ip)
        port_sets = [netmath.EPHEMERAL] if ephemeral else [(p, p) for p in _hc_ports(ep)]
        for ports in port_sets:
            yield _NaclQuery(subnet_id, topo.nacl_for(subnet_id), egress, remote, ports)


def _nacl_endpoints(topo: Topology) -> Iterator[Endpoint]:
    """The targets whose NACL legs are evaluated (known place, reachable from the ALB's VPC)."""
    return (ep for ep in endpoints(topo) if ep.ip and ep.subnet_id and not _unreachable(topo, ep))


def _nacl_plan(topo: Topology) -> dict[tuple[str, bool, str, tuple[int, int]], int | None]:
    """A rule number for every allow entry the NACL findings ask for.

    The numbers are distinct per ACL and direction over all four NACL checks, since their fixes run
    one after another (two entries with one number fail with NetworkAclEntryAlreadyExists). Each
    sits below the first rule that denies its traffic; None: no free number there.
    """
    planned: dict[tuple[str, bool], set[int]] = {}
    plan: dict[tuple[str, bool, str, tuple[int, int]], int | None] = {}
    for side, egress, ephemeral in _NACL_LEGS:
        for ep in _nacl_endpoints(topo):
            for q in _nacl_queries(topo, ep, side, egress, ephemeral):
                if q.acl is None or q.key in plan:
                    continue
                v = q.verdict()
                if v.allowed:
                    continue
                taken = planned.setdefault((q.acl.id, egress), set())
                n = netmath.free_rule_number_below(
                    q.acl, egress=egress, below=min(v.denied_by), taken=taken
                )
                plan[q.key] = n
                if n is not None:
                    taken.add(n)
    return plan


def _nacl_rule(acl: NetworkAcl, egress: bool, number: int) -> str:
    """A NACL rule as evidence: its number, action, ports and remote side."""
    if number == 32767:
        return "the final rule * (32767: deny all)"
    e = next(x for x in acl.entries if x.rule_number == number and x.egress == egress)
    what = netmath.describe_ports(e.protocol, e.from_port, e.to_port)
    return f"rule {number} ({e.action} {what} {'to' if egress else 'from'} {e.cidr})"


def _nacl_fix(acl_id: str, egress: bool, rule: int, ports: tuple[int, int], cidr: str) -> str:
    return (
        f"aws ec2 create-network-acl-entry --network-acl-id {acl_id} "
        f"{'--egress' if egress else '--ingress'} --rule-number {rule} --protocol tcp "
        f"--port-range From={ports[0]},To={ports[1]} --cidr-block {cidr} --rule-action allow"
    )


def _nacl_check(topo: Topology, *, side: str, egress: bool, ephemeral: bool) -> Iterator[Outcome]:
    """One direction of ALB<->target traffic through the NACL of one side's subnet."""
    plan = _nacl_plan(topo)
    reachable = {ep.label for ep in _nacl_endpoints(topo)}
    for ep in endpoints(topo):
        if not ep.ip or not ep.subnet_id:
            yield Outcome("skip", ep.label, "target IP/subnet unknown")
            continue
        if ep.label not in reachable:
            yield _follows(ep.label, f"{ep.target.id} is in {ep.vpc_id}", "net.same_vpc")
            continue
        problems: list[str] = []
        cmds: list[str] = []
        seen: list[str] = []
        acls: list[str] = []
        for q in _nacl_queries(topo, ep, side, egress, ephemeral):
            if q.same_subnet:
                seen.append(f"{q.subnet_id}: same subnet, NACLs do not apply")
                continue
            if q.acl is None:
                problems.append(f"no network ACL found for {q.subnet_id}")
                continue
            acls.append(q.acl.id)
            v = q.verdict()
            ports = q.ports
            what = (
                f"{q.acl.id} ({q.subnet_id}) {'outbound' if egress else 'inbound'} "
                f"tcp/{ports[0]}{'-' + str(ports[1]) if ports[1] != ports[0] else ''} "
                f"{'to' if egress else 'from'} {q.remote}"
            )
            if v.allowed:
                seen.append(f"{what} allowed by rule {','.join(map(str, v.allowed_by))}")
                continue
            by = "; ".join(_nacl_rule(q.acl, egress, n) for n in v.denied_by)
            problems.append(f"{what} denied by {by}{' (partly)' if v.partial else ''}")
            rule = plan.get(q.key)
            if rule is None:
                cmds.append(
                    f"# no free rule number below {min(v.denied_by)} in {q.acl.id}: renumber it"
                )
            else:
                cmds.append(_nacl_fix(q.acl.id, egress, rule, ports, q.remote))
        res = f"{','.join(dict.fromkeys(acls))} ({ep.label})" if acls else ep.label
        if problems:
            runnable = [c for c in dict.fromkeys(cmds) if not c.startswith("#")]
            notes = [c for c in dict.fromkeys(cmds) if c.startswith("#")]
            yield Outcome(
                "fail",
                res,
                "; ".join(problems),
                " && ".join(runnable) + ("  " + " ".join(notes) if notes else ""),
            )
        else:
            yield Outcome("pass", res, "; ".join(seen) or "nothing to evaluate")


@check(
    "nacl.target_inbound", "network", "Target subnet NACL admits the port from the ALB", "critical"
)
@_needs_targets
def _nacl_target_in(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    yield from _nacl_check(topo, side="target", egress=False, ephemeral=False)


@check(
    "nacl.target_outbound_ephemeral",
    "network",
    "Target subnet NACL lets replies out to the ALB (ephemeral ports)",
    "critical",
)
@_needs_targets
def _nacl_target_out(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    yield from _nacl_check(topo, side="target", egress=True, ephemeral=True)


@check("nacl.alb_outbound", "network", "ALB subnet NACL lets traffic out to the target", "critical")
@_needs_targets
def _nacl_alb_out(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    yield from _nacl_check(topo, side="alb", egress=True, ephemeral=False)


@check(
    "nacl.alb_inbound_ephemeral",
    "network",
    "ALB subnet NACL admits the target's replies (ephemeral ports)",
    "critical",
)
@_needs_targets
def _nacl_alb_in(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    yield from _nacl_check(topo, side="alb", egress=False, ephemeral=True)


# ---------------------------------------------------------------------------------------------
# instances


@check("instance.running", "instances", "API instance is running", "critical")
@_needs_targets
def _instance_running(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for ep in endpoints(topo):
        if ep.target_group.target_type != "instance":
            yield Outcome(
                "skip", ep.label, f"{ep.target_group.target_type} target, not an instance"
            )
            continue
        inst = ep.instance
        if inst is None:
            yield Outcome(
                "fail",
                ep.label,
                f"instance {ep.target.id} not found (terminated and gone?)",
                f"aws elbv2 deregister-targets --target-group-arn {ep.target_group.arn} "
                f"--targets Id={ep.target.id},Port={ep.target.port}  # then register a running "
                "API instance",
            )
            continue
        ev = f"{inst.id} state={inst.state} ip={inst.private_ip} subnet={inst.subnet_id}"
        if inst.state == "running":
            yield Outcome("pass", ep.label, ev)
        elif inst.state == "pending":
            yield Outcome("warn", ep.label, ev, "wait for the instance to start")
        elif inst.state in ("stopped", "stopping"):
            yield Outcome(
                "fail",
                ep.label,
                f"{ev}: a stopped target is unused; with no other target the ALB answers 503",
                f"aws ec2 start-instances --instance-ids {inst.id}",
            )
        else:
            yield Outcome(
                "fail",
                ep.label,
                ev,
                f"aws elbv2 deregister-targets --target-group-arn {ep.target_group.arn} "
                f"--targets Id={ep.target.id},Port={ep.target.port}  # then launch a replacement "
                "and register it",
            )


@check("instance.status_checks", "instances", "EC2 status checks pass", "high")
@_needs_targets
def _instance_status(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for ep in endpoints(topo):
        inst = ep.instance
        if inst is None or inst.state != "running":
            yield Outcome("skip", ep.label, "not a running instance target (see instance.running)")
            continue
        ev = f"{inst.id} system={inst.system_status} instance={inst.instance_status}"
        states = {inst.system_status, inst.instance_status}
        if states == {"ok"}:
            yield Outcome("pass", ep.label, ev)
        elif "impaired" in states:
            yield Outcome(
                "fail",
                ep.label,
                ev,
                f"aws ec2 reboot-instances --instance-ids {inst.id}  # or stop/start to move hosts",
            )
        else:
            yield Outcome("warn", ep.label, ev, "wait for the status checks to finish")


# The deploy and traffic-spread checks of the target group live in their own module; importing it
# registers them (after everything they use from here is defined).
from probes.aws import checks_deploy  # noqa: E402,F401
