"""run.json contents: versions, the effective config without secrets, counts."""

from __future__ import annotations

import dataclasses
import platform
import time
from importlib import metadata
from typing import Any

_PACKAGES = (
    "albprobe",
    "locust",
    "gevent",
    "geventhttpclient",
    "httpx",
    "boto3",
    "duckdb",
    "pyarrow",
    "django",
    "django-cors-headers",
    "gunicorn",
)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def config_for_record(cfg: Any) -> dict[str, Any]:
    """The effective config as plain data. Secrets are never in it: the config holds only the
    *names* of the environment variables with Authorization / Cookie values."""
    return dataclasses.asdict(cfg)


def gap_reason(gaps: list[dict[str, Any]], started_at: float | None, processes: int) -> str | None:
    """Why a run that lost load processes is partial, or None without a gap: 'lost Locust worker
    w1 from 6.2 s to 16.0 s of the load (worker gone): 1 of 2 load processes sent nothing then'."""
    if not gaps:
        return None
    t0 = started_at or min(g["from"] for g in gaps)
    spans = ", ".join(
        f"{g['worker_id']} from {g['from'] - t0:.1f} s"
        + (f" to {g['to'] - t0:.1f} s" if g.get("to") is not None else "")
        + f" of the load ({g['reason']})"
        for g in gaps
    )
    lost = len({g["worker_id"] for g in gaps})
    return (
        f"lost Locust worker{'s' if len(gaps) > 1 else ''} {spans}: {lost} of "
        f"{max(processes, lost)} load processes sent nothing then"
    )


def rows_reason(rows: int, locust_requests: int | None, shipped: bool) -> str | None:
    """Why a run whose rows fall short of Locust's count is partial, or None. ``shipped``: a
    distributed run whose workers ship their rows to the master, the one way to lose them
    while Locust still counts them (a master past its ceiling, docs/distributed.md)."""
    if locust_requests is None or rows >= locust_requests:
        return None
    why = (
        ": the master fell behind writing the workers' rows; past about 100,000 rows/s use "
        "worker-parts mode (--worker-parts, docs/distributed.md)"
        if shipped
        else ""
    )
    return f"recorded {rows:,} of the {locust_requests:,} requests Locust counted{why}"


def standalone_meta(
    s: Any, environment: Any, *, status: str, summary: dict | None = None
) -> dict[str, Any]:
    """run.json for a run started with plain `locust -f locustfiles/browser.py`."""
    host = environment.host or ""
    meta: dict[str, Any] = {
        "run_id": s.rundir.path.name,
        "status": status,
        "status_reason": (summary or {}).get("abort_reason")
        or (summary or {}).get("gap_reason")
        or (summary or {}).get("rows_reason"),
        "started_at": s.started_at or time.time(),
        "ended_at": (summary or {}).get("ended_at"),
        "target": {"kind": "url", "url": host},
        "origin": s.config.browser.origin,
        "shape": {"name": s.shape, "params": dataclasses.asdict(s.config.load)},
        "config": config_for_record(s.config),
        "capacity": dataclasses.asdict(s.config.capacity) | {"slots": s.config.capacity.slots},
        "proxy": {"kind": "unknown", "idle_timeout": s.config.proxy.idle_timeout},
        "workers": {
            "mode": "distributed" if s.role == "master" else "local",
            "count": s.processes,
            "gaps": (summary or {}).get("gaps", []),
            "clock_started_at": (summary or {}).get("clock_started_at"),
        },
        "versions": versions(),
    }
    if summary:
        meta["counts"] = {
            "requests": summary["rows"],
            "locust_requests": summary["locust_requests"],
            "dropped_iterations": summary["dropped_iterations"],
        }
        if summary.get("worker_parts"):
            meta["worker_parts"] = summary["worker_parts"]
    return meta
