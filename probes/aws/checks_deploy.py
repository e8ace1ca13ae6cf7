"""Target-group checks for deploys and traffic spread: draining, the routing algorithm with slow
start, and cross-zone load balancing. Registered in probes/aws/checks.py's check list (imported
at its end), pure like every check: a Topology and the Expected settings in, outcomes out."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

from probes.aws.checks import Expected, Outcome, check
from probes.aws.topology import TargetGroup, Topology, endpoints

DELAY = "deregistration_delay.timeout_seconds"
SLOW_START = "slow_start.duration_seconds"
ALGORITHM = "load_balancing.algorithm.type"
CROSS_ZONE = "load_balancing.cross_zone.enabled"
# A request at least this long makes round robin queue behind it on one target while the others
# idle; least outstanding requests routes around it.
LONG_REQUEST_S = 5.0


def _set_attributes(tg: TargetGroup, **values: str) -> str:
    attrs = " ".join(f"Key={k},Value={v}" for k, v in values.items())
    return (
        f"aws elbv2 modify-target-group-attributes --target-group-arn {tg.arn} --attributes {attrs}"
    )


def _seconds(tg: TargetGroup, key: str) -> float:
    try:
        return float(tg.attribute(key))
    except ValueError:
        return 0.0


@check(
    "tg.deregistration_delay",
    "target group",
    "Draining outlasts gunicorn's graceful timeout and the longest request",
    "high",
)
def _deregistration_delay(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    needs = {"gunicorn's graceful timeout": exp.graceful_timeout}
    if exp.longest_request > 0:
        needs["the longest expected request"] = exp.longest_request
    what, need = max(needs.items(), key=lambda kv: kv[1])
    for tg in topo.target_groups:
        delay = _seconds(tg, DELAY)
        ev = f"{DELAY}={delay:g}s; " + ", ".join(f"{k} {v:g}s" for k, v in needs.items())
        if delay >= need:
            yield Outcome("pass", tg.name, ev)
            continue
        yield Outcome(
            "fail",
            tg.name,
            f"{ev}: during a deploy the ALB closes a draining target's connections after "
            f"{delay:g}s, before {what} ({need:g}s) is over -> the in-flight requests get 502",
            _set_attributes(tg, **{DELAY: str(math.ceil(need))}),
        )


@check(
    "tg.algorithm",
    "target group",
    "Routing algorithm and slow start fit the requests",
    "low",
)
def _algorithm(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    for tg in topo.target_groups:
        algo = tg.attribute(ALGORITHM)
        slow = _seconds(tg, SLOW_START)
        n = len(topo.target_health.get(tg.arn, ()))
        ev = (
            f"{ALGORITHM}={algo}, {SLOW_START}={slow:g}"
            + (" (new targets ramp up over that time)" if slow else " (off)")
            + f", {n} target(s)"
        )
        if algo == "round_robin" and n >= 2 and exp.longest_request >= LONG_REQUEST_S:
            # AWS refuses least outstanding requests together with slow start: one command.
            yield Outcome(
                "warn",
                tg.name,
                f"{ev}: requests up to {exp.longest_request:g}s long; round robin keeps sending "
                "a target its share while its workers are busy with them (queueing, 504)",
                _set_attributes(tg, **{ALGORITHM: "least_outstanding_requests", SLOW_START: "0"}),
            )
        else:
            yield Outcome("pass", tg.name, ev)


def _cross_zone_off(topo: Topology, tg: TargetGroup) -> bool:
    value = tg.attribute(CROSS_ZONE)
    if value == "use_load_balancer_configuration":
        # An ALB's own setting is always on (AWS does not let it be turned off); other types
        # follow their attribute.
        lb = topo.load_balancer
        return lb.type != "application" and lb.attributes.get(CROSS_ZONE, "false") != "true"
    return value == "false"


@check(
    "tg.cross_zone",
    "target group",
    "With cross-zone load balancing off, every ALB zone has targets and no target is outside",
    "high",
)
def _cross_zone(topo: Topology, exp: Expected) -> Iterator[Outcome]:
    lb = topo.load_balancer
    for tg in topo.target_groups:
        if not _cross_zone_off(topo, tg):
            yield Outcome(
                "pass", tg.name, f"cross-zone load balancing on ({tg.attribute(CROSS_ZONE)})"
            )
            continue
        zones = Counter(
            ep.availability_zone for ep in endpoints(topo) if ep.target_group.arn == tg.arn
        )
        ev = (
            "cross-zone off; targets per AZ: "
            + (", ".join(f"{az}={n}" for az, n in sorted(zones.items(), key=str)) or "none")
            + f"; ALB AZs {', '.join(lb.availability_zones)}"
        )
        empty = [az for az in lb.availability_zones if not zones.get(az)]
        outside = sorted(az for az in zones if az and az not in lb.availability_zones)
        problems = []
        if empty:
            problems.append(
                f"the ALB's node in {', '.join(empty)} has no target of its own and may not send "
                "to other zones: the clients it serves get 503"
            )
        if outside:
            problems.append(
                f"targets in {', '.join(outside)}, where the ALB has no subnet, get no traffic"
            )
        if not problems:
            yield Outcome("pass", tg.name, ev)
            continue
        yield Outcome(
            "fail",
            tg.name,
            f"{ev}: " + "; ".join(problems),
            _set_attributes(tg, **{CROSS_ZONE: "true"}),
        )
