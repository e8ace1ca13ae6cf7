"""Synthetic run directories for every failure mode of design.md's matrix (tests and benchmarks).

Each mode writes what the real collectors would: requests (with the attribution and CORS verdict
the recorder gives), HAProxy health samples in ALB vocabulary, gunicorn/testbed events, the raw
HAProxy and gunicorn logs in their real formats, and run.json. The signals follow the testbed facts
(HAProxy 503 on refused connect mapped to the ALB's 502 page, ``SH--`` on a killed backend, gunicorn's
own 500 on worker timeout). Columns are generated with numpy so the same code makes a 10 M-request
run directory for the benchmark.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from probes.rundir import SCHEMAS, RunDir, TableWriter

MODES = (
    "healthy",
    "target-down",
    "capacity",
    "keepalive-race",
    "health-check-host",
    "blocked-port",
    "cors-misconfig",
    "ambiguous",
)
ALL_INPUTS = frozenset(
    {"requests", "health", "events", "haproxy_log", "gunicorn_log", "run_json", "metrics"}
)
ORIGIN = "https://hakwonplus.com"
NO_ACAO = (
    "Access to fetch at 'https://api.hakwonplus.com/api/fast' from origin 'https://hakwonplus.com' "
    "has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header is present on the "
    "requested resource."
)
TARGET = "127.0.0.1:18001"
T0 = 1_795_698_000.0  # 2026-11-26 13:00:00 UTC


@dataclass
class Req:
    """Columns of the requests table as numpy arrays (object arrays for strings)."""

    ts: np.ndarray
    status: np.ndarray
    source: np.ndarray
    cors_ok: np.ndarray
    latency: np.ndarray
    reused: np.ndarray
    term: np.ndarray  # HAProxy termination state for the log line
    server: np.ndarray  # HAProxy server name ("target" or "<NOSRV>")

    def __len__(self) -> int:
        return len(self.ts)


def _arrivals(rng: np.random.Generator, rps: np.ndarray, t0: float) -> np.ndarray:
    """Uniform arrivals: rps[i] requests in second i."""
    counts = rps.astype(np.int64)
    sec = np.repeat(np.arange(len(counts)), counts)
    return t0 + sec + rng.random(len(sec))


def _base(rng: np.random.Generator, ts: np.ndarray, lat_ms: float) -> Req:
    n = len(ts)
    return Req(
        ts=ts,
        status=np.full(n, 200, dtype=np.int32),
        source=np.full(n, "app", dtype=object),
        cors_ok=np.ones(n, dtype=bool),
        latency=rng.lognormal(np.log(lat_ms), 0.35, n),
        reused=rng.random(n) < 0.9,
        term=np.full(n, "----", dtype=object),
        server=np.full(n, "target", dtype=object),
    )


def _proxy_fail(
    r: Req,
    mask: np.ndarray,
    status: int,
    term: str,
    lat: np.ndarray | float,
    server: str = "target",
) -> None:
    r.status[mask] = status
    r.source[mask] = "proxy"
    r.cors_ok[mask] = False
    r.latency[mask] = lat if np.isscalar(lat) else np.asarray(lat)[mask]
    r.term[mask] = term
    r.server[mask] = server


def _meta(mode: str, seconds: float, capacity: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "run_id": f"synth-{mode}",
        "status": "complete",
        "status_reason": None,
        "started_at": T0,
        "ended_at": T0 + seconds,
        "target": {"kind": "testbed", "url": "http://127.0.0.1:18080", "host": "127.0.0.1"},
        "origin": ORIGIN,
        "shape": {"name": "synthetic", "params": {"mode": mode}},
        "config": {},
        "capacity": capacity,
        "proxy": {
            "kind": "haproxy-testbed",
            "idle_timeout": 60,
            "health_check": {
                "path": "/health",
                "interval": 1,
                "timeout": 1,
                "healthy_threshold": 2,
                "unhealthy_threshold": 2,
                "matcher": "200",
            },
        },
        "testbed": {
            "faults": [] if mode in ("healthy", "ambiguous") else [mode],
            "fault_timeline": [],
        },
        "workers": {"mode": "local", "count": 1, "gaps": []},
        "counts": {},
        "versions": {"albprobe": "synthetic"},
    }


def _cap(
    worker_class: str = "gthread",
    workers: int = 2,
    threads: int = 4,
    timeout: float = 30,
    keepalive: float = 2,
) -> dict[str, Any]:
    slots = workers * (threads if worker_class == "gthread" else 1)
    return {
        "worker_class": worker_class,
        "workers": workers,
        "threads": threads,
        "timeout": timeout,
        "keepalive": keepalive,
        "slots": slots,
    }


def _glog(ts: float, pid: int, level: str, msg: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(ts))
    return f"[{stamp}] [{pid}] [{level}] {msg}"


def _boot(ts: float, master: int, workers: int, first_pid: int) -> list[str]:
    out = [
        _glog(ts, master, "INFO", "Starting gunicorn 23.0.0"),
        _glog(ts, master, "INFO", f"Listening at: http://127.0.0.1:18001 ({master})"),
        _glog(ts, master, "INFO", "Using worker: gthread"),
    ]
    out += [
        _glog(ts, first_pid + i, "INFO", f"Booting worker with pid: {first_pid + i}")
        for i in range(workers)
    ]
    return out


def _hap_lines(r: Req) -> Iterable[str]:
    """HAProxy httplog lines for the requests (raw format, as the testbed writes them)."""
    order = np.argsort(r.ts)
    for i in order:
        ts = float(r.ts[i])
        ms = int(round((ts - int(ts)) * 1000))
        if ms == 1000:
            ts, ms = float(int(ts) + 1), 0
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S", time.gmtime(int(ts))) + f".{ms:03d}"
        status = int(r.status[i])
        term = str(r.term[i])
        lat = int(r.latency[i])
        server = str(r.server[i])
        if status == 0:
            continue
        if term.startswith(("SC", "sC")):
            timers = f"0/0/-1/-1/{lat}" if server != "<NOSRV>" else "0/-1/-1/-1/0"
            if server == "<NOSRV>":
                timers = "0/-1/-1/-1/0"
        elif term.startswith(("SH", "SD")) or term.startswith("sH"):
            timers = f"0/0/0/-1/{lat}"
        else:
            timers = f"0/0/0/{max(0, lat - 1)}/{lat}"
        yield (
            f"127.0.0.1:{40000 + int(i) % 20000} [{stamp}] fe_alb be_targets/{server} {timers} "
            f'{status} 230 - - {term} 3/3/2/2/0 0/0 "GET /api/fast HTTP/1.1"'
        )


def _health_rows(
    seconds: int, state_of: Any, in_flight: np.ndarray | None = None
) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {k: [] for k in SCHEMAS["health"].names}
    for s in range(seconds):
        state, reason, desc = state_of(s)
        cols["ts"].append(T0 + s + 0.5)
        cols["target"].append(TARGET)
        cols["state"].append(state)
        cols["reason"].append(reason)
        cols["description"].append(desc)
        cols["collector"].append("haproxy")
        cols["in_flight"].append(int(in_flight[s]) if in_flight is not None else 0)
        cols["queued"].append(0)
    return cols


def _healthy(_s: int) -> tuple[str, str | None, str | None]:
    return ("healthy", "L7OK", "Layer7 check passed, code: 200")


def build(
    mode: str, seed: int = 7, seconds: int = 60, rps: int = 40, fail_open: bool = True
) -> dict[str, Any]:
    """The content of a synthetic run, by mode (pure: no disk)."""
    if mode not in MODES:
        raise ValueError(f"unknown synthetic mode {mode!r}; one of {MODES}")
    rng = np.random.default_rng(seed)
    cap = _cap()
    events: list[dict[str, Any]] = []
    glog = _boot(T0 - 5, 100, 2, 101)
    health: Any = _healthy
    in_flight = None
    f0, f1 = 20, 40  # fault window (seconds into the run)

    if mode == "capacity":
        cap = _cap(workers=2, threads=4, timeout=5)
        ramp = np.linspace(5, 120, seconds).astype(int)
        ts = _arrivals(rng, ramp, T0)
        sec = (ts - T0).astype(int)
        conc_offered = ramp * 0.15  # 150 ms service time
        over = np.clip(conc_offered[sec] / cap["slots"], 0, None)
        # Latency explodes past capacity (queueing), towards gunicorn's 5 s timeout.
        r = _base(rng, ts, 150)
        r.latency = r.latency * np.where(over > 1, over**4, 1)
        r.latency = np.minimum(r.latency, 5200)
        past = over > 1.15
        u = rng.random(len(ts))
        timeout_500 = past & (u < 0.10)
        r.status[timeout_500] = 500
        r.source[timeout_500] = "server"
        r.cors_ok[timeout_500] = False
        r.latency[timeout_500] = 5000 + rng.random(timeout_500.sum()) * 100
        gw = past & (u >= 0.10) & (u < 0.16)
        _proxy_fail(r, gw, 504, "sH--", 5000.0)
        killed = past & (u >= 0.16) & (u < 0.19)
        _proxy_fail(r, killed, 502, "SH--", r.latency)
        in_flight = np.minimum(conc_offered, cap["slots"] + 2).astype(int)
        first_past = int(np.argmax(conc_offered / cap["slots"] > 1.15))
        pid = 101
        for k, s in enumerate(range(first_past + 1, seconds, 4)):
            wpid = pid + k
            events.append(
                {
                    "ts": T0 + s,
                    "source": "gunicorn",
                    "kind": "worker_timeout",
                    "detail": f"WORKER TIMEOUT (pid:{wpid})",
                    "pid": wpid,
                }
            )
            glog.append(_glog(T0 + s, 100, "CRITICAL", f"WORKER TIMEOUT (pid:{wpid})"))
            glog.append(
                _glog(
                    T0 + s,
                    100,
                    "ERROR",
                    f"Worker (pid:{wpid}) was sent SIGKILL! Perhaps out of memory?",
                )
            )
            glog.append(_glog(T0 + s + 1, 200 + k, "INFO", f"Booting worker with pid: {200 + k}"))
    else:
        load = np.full(seconds, 5 if mode == "keepalive-race" else rps)
        ts = _arrivals(rng, load, T0)
        sec = (ts - T0).astype(int)
        r = _base(rng, ts, 25)
        in_flight = np.full(seconds, 1)

    if mode == "target-down":
        down = (sec >= f0) & (sec < f1)
        nosrv = down & (sec >= f0 + 2)
        _proxy_fail(r, down & ~nosrv, 503, "SC--", 1.0)
        _proxy_fail(
            r, nosrv, 503, "SC--", 0.5, server="target-failopen" if fail_open else "<NOSRV>"
        )
        r.status[down] = 502  # the client sees the testbed's ALB 502 page
        events += [
            {
                "ts": T0 + f0,
                "source": "testbed",
                "kind": "fault_on",
                "detail": "target-down",
                "pid": None,
            },
            {
                "ts": T0 + f0,
                "source": "testbed",
                "kind": "target_killed",
                "detail": "gunicorn SIGKILL",
                "pid": 100,
            },
            {
                "ts": T0 + f1,
                "source": "testbed",
                "kind": "fault_off",
                "detail": "target-down",
                "pid": None,
            },
            {
                "ts": T0 + f1,
                "source": "testbed",
                "kind": "target_started",
                "detail": "gunicorn",
                "pid": 300,
            },
        ]
        glog += _boot(T0 + f1, 300, 2, 301)

        def health(s: int) -> tuple[str, str | None, str | None]:
            if f0 + 1 <= s < f1 + 2:
                return (
                    "unhealthy",
                    "L4CON",
                    'Layer4 connection problem, info: "Connection refused"',
                )
            return _healthy(s)

    elif mode == "keepalive-race":
        idx = rng.choice(len(ts), size=6, replace=False)
        m = np.zeros(len(ts), dtype=bool)
        m[idx] = True
        _proxy_fail(r, m, 502, "SH--", 2.0)
        r.reused[m] = True

    elif mode == "health-check-host":
        bad_from = 4

        def health(s: int) -> tuple[str, str | None, str | None]:
            if s >= bad_from:
                return ("unhealthy", "L7STS", 'Layer7 wrong status, code: 400, info: "Bad Request"')
            return ("initial", "L7STS", 'Layer7 wrong status, code: 400, info: "Bad Request"')

        # The target is marked down but the proxy fails open (testbed: a check-less backup
        # server on the same address; ALB: all targets unhealthy -> routes to them anyway).
        down = sec >= bad_from + 1
        if fail_open:
            r.server[down] = "target-failopen"
        else:  # another healthy target elsewhere / no backup: HAProxy finds no server (503 -> 502 page)
            _proxy_fail(r, down, 503, "SC--", 0.3, server="<NOSRV>")
            r.status[down] = 502

    elif mode == "blocked-port":
        # The proxy cannot reach the app port: connect timeouts, no app response at all.
        m = np.ones(len(ts), dtype=bool)
        half = rng.random(len(ts)) < 0.5
        _proxy_fail(r, m & half, 503, "sC--", 1000.0)
        r.status[m & half] = 502
        _proxy_fail(r, m & ~half, 504, "sC--", 1000.0)

        def health(s: int) -> tuple[str, str | None, str | None]:
            return ("unhealthy", "L4TOUT", "Layer4 timeout")

    elif mode == "cors-misconfig":
        r.cors_ok[:] = False

    elif mode == "ambiguous":
        keep = rng.random(len(ts)) < 0.02
        r = Req(*(getattr(r, f)[keep] for f in Req.__dataclass_fields__))
        m = rng.random(len(r)) < 0.3
        r.status[m] = 0
        r.source[m] = "network"
        r.cors_ok[m] = False
        r.latency[m] = 10000.0
        cap = None

    if in_flight is not None and mode != "capacity":
        in_flight = np.full(seconds, 1)
    return {
        "mode": mode,
        "req": r,
        "meta": _meta(mode, seconds, cap),
        "events": events,
        "gunicorn_log": glog,
        "health": _health_rows(seconds, health, in_flight),
        "seconds": seconds,
    }


def _request_table(r: Req, start: int, stop: int, rng: np.random.Generator) -> pa.Table:
    sl = slice(start, stop)
    n = stop - start
    status = r.status[sl]
    source = r.source[sl]
    cors = r.cors_ok[sl]
    fail_msg = np.where(cors, None, NO_ACAO)
    cols = {
        "ts": r.ts[sl],
        "intended_ts": None,
        "kind": np.full(n, "actual", dtype=object),
        "endpoint": np.full(n, "fast", dtype=object),
        "method": np.full(n, "GET", dtype=object),
        "path": np.full(n, "/api/fast", dtype=object),
        "status": status,
        "source": source,
        "source_evidence": np.where(source == "proxy", "server: awselb/2.0", None),
        "cors_ok": cors,
        "cors_step": np.where(cors, None, "allow-origin"),
        "cors_message": fail_msg,
        "latency_ms": r.latency[sl],
        "co_latency_ms": None,
        "bytes": np.where(source == "proxy", 122, 57).astype(np.int64),
        "error": np.where(status == 0, "timeout", None),
        "conn_reused": r.reused[sl],
        "worker_id": np.full(n, "local", dtype=object),
        "user_id": (np.arange(start, stop) % 50).astype(np.int32),
    }
    arrays = []
    for f in SCHEMAS["requests"]:
        v = cols[f.name]
        arrays.append(pa.nulls(n, f.type) if v is None else pa.array(v, type=f.type))
    del rng
    return pa.Table.from_arrays(arrays, schema=SCHEMAS["requests"])


def write(
    root: str | Path,
    mode: str,
    *,
    seed: int = 7,
    seconds: int = 60,
    rps: int = 40,
    include: Iterable[str] = ALL_INPUTS,
    run_id: str | None = None,
    fail_open: bool = True,
) -> Path:
    """Write a synthetic run directory for ``mode``; ``include`` picks which inputs exist."""
    inc = set(include)
    data = build(mode, seed=seed, seconds=seconds, rps=rps, fail_open=fail_open)
    rd = RunDir.create(root, run_id or f"synth-{mode}")
    r: Req = data["req"]
    rng = np.random.default_rng(seed + 1)
    if "run_json" in inc:
        meta = data["meta"]
        meta["counts"] = {"requests": len(r)}
        rd.write_meta(meta)
    if "requests" in inc:
        w = TableWriter(rd, "requests", flush_rows=10**9, flush_seconds=10**9)
        w.append_columns(_request_table(r, 0, len(r), rng).to_pydict())
        w.close()
    if "metrics" in inc and mode != "ambiguous":
        # CloudWatch-style 60-s sums of what an ALB would have counted.
        minute = ((r.ts - T0) // 60).astype(int)
        w = TableWriter(rd, "metrics", flush_rows=10**9, flush_seconds=10**9)
        dims = "LoadBalancer=app/synth/0123456789abcdef"
        for m in np.unique(minute):
            sel = minute == m
            for metric, mask in (
                ("HTTPCode_ELB_502_Count", (r.source == "proxy") & (r.status == 502)),
                ("HTTPCode_ELB_5XX_Count", (r.source == "proxy") & (r.status >= 500)),
                ("RequestCount", r.status > 0),
            ):
                w.append(
                    {
                        "ts": T0 + 60 * int(m),
                        "metric": metric,
                        "stat": "Sum",
                        "period": 60,
                        "value": float((sel & mask).sum()),
                        "dimensions": dims,
                    }
                )
        w.close()
    if "health" in inc and mode != "ambiguous":
        w = TableWriter(rd, "health", flush_rows=10**9, flush_seconds=10**9)
        w.append_columns(data["health"])
        w.close()
    if "events" in inc and data["events"]:
        w = TableWriter(rd, "events", flush_rows=10**9, flush_seconds=10**9)
        w.extend(data["events"])
        w.close()
    if "haproxy_log" in inc and mode != "ambiguous":
        (rd.logs / "haproxy-1.log").write_text("\n".join(_hap_lines(r)) + "\n", encoding="utf-8")
    if "gunicorn_log" in inc and mode != "ambiguous":
        (rd.logs / "gunicorn.log").write_text(
            "\n".join(data["gunicorn_log"]) + "\n", encoding="utf-8"
        )
    return rd.path


def write_large(
    root: str | Path, n_requests: int, *, seed: int = 11, rps: int = 20_000, chunk: int = 1_000_000
) -> Path:
    """A capacity-mode run directory with ``n_requests`` rows (benchmark input), chunked writes."""
    rng = np.random.default_rng(seed)
    seconds = max(1, int(np.ceil(n_requests / rps)))
    rd = RunDir.create(root, f"synth-large-{n_requests}")
    cap = _cap(workers=8, threads=4, timeout=5)
    meta = _meta("capacity", seconds, cap)
    meta["counts"] = {"requests": n_requests}
    rd.write_meta(meta)
    tdir = rd.table_dir("requests")
    tdir.mkdir(exist_ok=True)
    for part, start in enumerate(range(0, n_requests, chunk)):
        n = min(chunk, n_requests - start)
        ts = T0 + np.sort(rng.random(n)) * (n / rps) + start / rps
        r = _base(rng, ts, 20)
        sec = (ts - T0).astype(int)
        hot = sec > seconds * 0.7
        u = rng.random(n)
        m500 = hot & (u < 0.01)
        r.status[m500], r.source[m500], r.cors_ok[m500] = 500, "server", False
        _proxy_fail(r, hot & (u >= 0.01) & (u < 0.02), 502, "SH--", r.latency)
        pq.write_table(
            _request_table(r, 0, n, rng), tdir / f"part-{part:05d}.parquet", compression="zstd"
        )
    hw = TableWriter(rd, "health", flush_rows=10**9, flush_seconds=10**9)
    hw.append_columns(_health_rows(seconds, _healthy, np.full(seconds, 20)))
    hw.close()
    glog = _boot(T0 - 5, 100, 8, 101)
    for k, s in enumerate(range(int(seconds * 0.7), seconds, 3)):
        glog.append(_glog(T0 + s, 100, "CRITICAL", f"WORKER TIMEOUT (pid:{101 + k})"))
        glog.append(_glog(T0 + s + 1, 400 + k, "INFO", f"Booting worker with pid: {400 + k}"))
    (rd.logs / "gunicorn.log").write_text("\n".join(glog) + "\n", encoding="utf-8")
    return rd.path


# ---- ALB access logs -------------------------------------------------------------------------

_ALB_OK = (
    "http {time} app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:{cport} {target} "
    '0.000 {tpt} 0.000 {elb} {tsc} 34 366 "GET http://api.hakwonplus.com:80/api/fast HTTP/1.1" '
    '"Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0" - - '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 {ctime} "forward" "-" "-" '
    '"{target}" "{tsc}" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"'
)


def alb_lines(
    n: int, *, seed: int = 3, keepalive_every: int = 500, t0: float = T0
) -> Iterable[str]:
    """ALB access-log lines: mostly 200s, with keep-alive-signature 502s (target closed)."""
    rng = np.random.default_rng(seed)
    targets = ["10.0.1.10:8000", "10.0.2.11:8000"]
    lat = rng.lognormal(np.log(0.02), 0.3, n)
    ports = rng.integers(1024, 65535, n)
    for i in range(n):
        t = t0 + i * 0.01
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"
        target = targets[i % 2]
        if keepalive_every and i % keepalive_every == keepalive_every - 1:
            line = _ALB_OK.format(
                time=stamp, cport=ports[i], target=target, tpt="-1", elb=502, tsc="-", ctime=stamp
            )
            line = line.replace(" 0.000 -1 0.000 502", " 0.000 -1 -1 502")
        else:
            line = _ALB_OK.format(
                time=stamp,
                cport=ports[i],
                target=target,
                tpt=f"{lat[i]:.3f}",
                elb=200,
                tsc=200,
                ctime=stamp,
            )
        yield line


def write_alb_logs(
    folder: str | Path, n: int, *, files: int = 2, gz: bool = True, seed: int = 3
) -> list[Path]:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    lines = list(alb_lines(n, seed=seed))
    per = (len(lines) + files - 1) // files
    paths = []
    for k in range(files):
        name = f"123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20261126T13{k:02d}Z_10.0.0.{k}_abcd{k}.log"
        chunk = "\n".join(lines[k * per : (k + 1) * per]) + "\n"
        if gz:
            p = out / (name + ".gz")
            with gzip.open(p, "wt", encoding="utf-8") as fh:
                fh.write(chunk)
        else:
            p = out / name
            p.write_text(chunk, encoding="utf-8")
        paths.append(p)
    return paths
