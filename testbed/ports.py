"""Free-port selection and port checks (loopback only); readiness waits are core.supervisor's.

A picked port is free when picked and bound later (by HAProxy, gunicorn, Locust). Two things can
take it in between: another process picking at the same time (parallel test workers), and an
outgoing connection's source port, drawn from the same ephemeral range as ``bind(0)``. With
ALBPROBE_PORT_BAND=lo-hi set (the test suite gives each parallel worker its own band below the
ephemeral range), ports come from that band instead, and never twice from one process."""

from __future__ import annotations

import os
import random
import socket
import threading

_handed: set[int] = set()
_lock = threading.Lock()


def _band() -> tuple[int, int] | None:
    raw = os.environ.get("ALBPROBE_PORT_BAND", "")
    lo, sep, hi = raw.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit() or not 1024 <= int(lo) < int(hi) <= 65535:
        return None
    return int(lo), int(hi)


def free_port(host: str = "127.0.0.1") -> int:
    band = _band()
    if band is not None:
        with _lock:
            candidates = [p for p in range(*band) if p not in _handed]
            random.shuffle(candidates)
            for port in candidates:
                if port_bindable(host, port, reuse=False):
                    _handed.add(port)
                    return port
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_bindable(host: str, port: int, *, reuse: bool = True) -> bool:
    with socket.socket() as s:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
