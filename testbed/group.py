"""The target group on HAProxy's runtime API: register, deregister (drain), and each target's view.

Each target has three HAProxy servers (testbed/haproxy.py): its routing server in the target
backend (tracks the health-check server), its fail-open backup, and its health-check server. The
ALB's registration states map onto HAProxy's admin states:

| ALB | HAProxy |
|---|---|
| registered, initial (no traffic until healthy) | check server forced DOWN, routing server READY, fail-open backup still MAINT (until healthy) |
| deregistered, draining (no new requests) | routing + backup server DRAIN (weight 0) |
| drained (delay over: connections closed) | `shutdown sessions server`, then MAINT |
| not registered | MAINT |
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import TestbedError
from testbed.gunicorn_proc import GunicornProcess
from testbed.haproxy import (
    BACKEND,
    ServerStat,
    check_backend,
    failopen_name,
    runtime_command,
    server_name,
)


@dataclass
class TargetSlot:
    """One target of the group: its address, its gunicorn, its own faults and registration."""

    index: int  # 1-based, as faults name it (target-down:2)
    ip: str
    port: int
    gunicorn: GunicornProcess | None = None
    faults: set[str] = field(default_factory=set)
    registered: bool = True
    initial: bool = False  # registered, not yet healthy (the ALB's "initial")
    drain_timer: threading.Timer | None = None
    drained: threading.Event = field(default_factory=threading.Event)

    @property
    def label(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def name(self) -> str:
        return server_name(self.index)


def _check(out: str, what: str) -> None:
    text = out.strip()
    if text and "changed" not in text.lower() and text.lower() not in ("done.",):
        raise TestbedError(f"haproxy refused to {what}: {text}")


def routing_servers(slot: TargetSlot, fail_open: bool) -> list[str]:
    names = [f"{BACKEND}/{slot.name}"]
    if fail_open:
        names.append(f"{BACKEND}/{failopen_name(slot.index)}")
    return names


def set_admin_state(
    sock: Path, slot: TargetSlot, state: str, fail_open: bool, *, backup: bool = True
) -> None:
    """ready | drain | maint on the routing server and (``backup``) its fail-open backup."""
    for srv in routing_servers(slot, fail_open and backup):
        _check(runtime_command(sock, f"set server {srv} state {state}"), f"set {srv} {state}")


def shutdown_sessions(sock: Path, slot: TargetSlot, fail_open: bool) -> None:
    for srv in routing_servers(slot, fail_open):
        runtime_command(sock, f"shutdown sessions server {srv}")


def force_check_down(sock: Path, slot: TargetSlot) -> None:
    """A (re)registered target starts unhealthy: the checker must see `rise` passes first."""
    srv = f"{check_backend(slot.index)}/{slot.name}"
    _check(runtime_command(sock, f"set server {srv} health down"), f"mark {srv} down")


def set_addr(sock: Path, slot: TargetSlot, host: str, port: int, fail_open: bool) -> None:
    """Where the proxy's connections to this target (traffic and checks) really go."""
    servers = [*routing_servers(slot, fail_open), f"{check_backend(slot.index)}/{slot.name}"]
    for srv in servers:
        out = runtime_command(sock, f"set server {srv} addr {host} port {port}")
        if "not" in out.lower() and "changed" not in out.lower():
            raise TestbedError(f"haproxy refused to re-route {srv}: {out.strip()}")
        # Connections pooled towards the old address must not carry on.
        runtime_command(sock, f"shutdown sessions server {srv}")


def target_view(slot: TargetSlot, rows: list[ServerStat]) -> ServerStat:
    """One target as the ALB shows it: the routing server's state (UP, DOWN, DRAIN, MAINT; INITIAL
    while registered and not yet healthy), the health-check server's last check, and the load on
    the routing server and its fail-open backup together."""
    by = {(r.backend, r.name): r for r in rows}
    route = by[(BACKEND, slot.name)]
    check = by.get((check_backend(slot.index), slot.name), route)
    backup = by.get((BACKEND, failopen_name(slot.index)))
    status = route.status
    if not slot.registered:
        # the ALB's words whatever the checks say: a deregistered target drains, then is unused
        status = "MAINT" if slot.drained.is_set() else "DRAIN"
    elif slot.initial and status.startswith("DOWN"):
        status = "INITIAL"
    return dataclasses.replace(
        route,
        status=status,
        check_status=check.check_status,
        check_code=check.check_code,
        last_chk=check.last_chk,
        scur=route.scur + (backup.scur if backup else 0),
        qcur=route.qcur + (backup.qcur if backup else 0),
        hrsp_5xx=route.hrsp_5xx + (backup.hrsp_5xx if backup else 0),
        econ=route.econ + (backup.econ if backup else 0),
        eresp=route.eresp + (backup.eresp if backup else 0),
        stot=route.stot + (backup.stot if backup else 0),
    )
