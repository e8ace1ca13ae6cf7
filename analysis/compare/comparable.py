"""Whether two runs can be compared at all: same endpoints, shape, target and origin. Each
difference is one sentence naming both values; `--force` compares anyway and lists them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def endpoints_of(meta: dict[str, Any], seen: list[str]) -> dict[str, str]:
    """endpoint name -> "METHOD /route" from run.json's config (query strings left out: the
    testbed's ``?ms=`` is a setting of the endpoint, not another endpoint); else the names seen
    in the requests table."""
    eps = (meta.get("config") or {}).get("endpoints")
    if isinstance(eps, list) and eps:
        return {
            str(
                e.get("name")
            ): f"{str(e.get('method') or 'GET').upper()} {urlsplit(str(e.get('path') or '')).path}"
            for e in eps
            if isinstance(e, dict)
        }
    return {name: "?" for name in seen}


def _target(meta: dict[str, Any]) -> str:
    t = meta.get("target") or {}
    if not isinstance(t, dict):
        return str(t)
    # the testbed listens on a port picked at start: every testbed run is the same target
    return "testbed" if t.get("kind") == "testbed" else str(t.get("url") or t.get("kind") or "?")


def differences(
    base: dict[str, Any], new: dict[str, Any], base_seen: list[str], new_seen: list[str]
) -> tuple[list[str], list[str]]:
    """(refusing differences, notes): the first make the runs incomparable."""
    out: list[str] = []
    notes: list[str] = []
    be, ne = endpoints_of(base, base_seen), endpoints_of(new, new_seen)
    if set(be) != set(ne):
        only_b, only_n = sorted(set(be) - set(ne)), sorted(set(ne) - set(be))
        parts = []
        if only_b:
            parts.append(f"only the baseline has {', '.join(only_b)}")
        if only_n:
            parts.append(f"only the new run has {', '.join(only_n)}")
        out.append("endpoints differ: " + "; ".join(parts))
    for name in sorted(set(be) & set(ne)):
        if be[name] != ne[name]:
            out.append(
                f"endpoint {name} is {be[name]!r} in the baseline, {ne[name]!r} in the new run"
            )
    bq, nq = _paths(base), _paths(new)
    for name in sorted(set(bq) & set(nq)):
        if bq[name] != nq[name]:
            notes.append(f"endpoint {name}: path {bq[name]!r} -> {nq[name]!r}")
    bs, ns = base.get("shape") or {}, new.get("shape") or {}
    if bs.get("name") != ns.get("name"):
        out.append(
            f"shape is {bs.get('name')!r} in the baseline, {ns.get('name')!r} in the new run"
        )
    else:
        bp, np_ = bs.get("params") or {}, ns.get("params") or {}
        for k in sorted(set(bp) | set(np_)):
            if bp.get(k) != np_.get(k):
                out.append(
                    f"shape parameter {k} is {bp.get(k)!r} in the baseline, {np_.get(k)!r} in the new run"
                )
    if _target(base) != _target(new):
        out.append(f"target is {_target(base)} in the baseline, {_target(new)} in the new run")
    if base.get("origin") != new.get("origin"):
        out.append(
            f"origin is {base.get('origin')!r} in the baseline, {new.get('origin')!r} in the new run"
        )
    faults_b = (base.get("testbed") or {}).get("fault_timeline")
    faults_n = (new.get("testbed") or {}).get("fault_timeline")
    if faults_b != faults_n and (faults_b or faults_n):
        notes.append("the testbed's fault schedules differ")
    return out, notes


def _paths(meta: dict[str, Any]) -> dict[str, str]:
    eps = (meta.get("config") or {}).get("endpoints")
    if not isinstance(eps, list):
        return {}
    return {str(e.get("name")): str(e.get("path")) for e in eps if isinstance(e, dict)}
