"""Micro-benchmark of the CORS hot path the Locust user runs on every request: build the
response record, evaluate it, attribute it, consult/update the preflight cache, fetch the
preflight headers. Prints calls/s and the cost relative to a trivial dict lookup measured in
the same run (ratios, not absolute timings, are what to compare across machines).

    .venv/bin/python bench/bench_cors_eval.py [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from probes.attribution import attribute
from probes.cors import (
    CorsRequest,
    HttpResponse,
    PreflightCache,
    evaluate_actual,
    evaluate_preflight,
    needs_preflight,
    preflight_headers,
)

URL = "https://api.hakwonplus.com/api/items"
ORIGIN = "https://hakwonplus.com"
REQ = CorsRequest(URL, ORIGIN, "POST", (("Content-Type", "application/json"), ("X-Client", "web")))
GET = CorsRequest(URL, ORIGIN)
PRE_HEADERS = (
    ("Server", "gunicorn"),
    ("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ("Content-Length", "0"),
    ("Vary", "origin"),
    ("access-control-allow-origin", ORIGIN),
    ("access-control-allow-credentials", "true"),
    (
        "access-control-allow-headers",
        "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with, x-client",
    ),
    ("access-control-allow-methods", "DELETE, GET, OPTIONS, PATCH, POST, PUT"),
    ("access-control-max-age", "86400"),
)
ACT_HEADERS = (
    ("Server", "gunicorn"),
    ("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ("Content-Type", "application/json"),
    ("Content-Length", "27"),
    ("Vary", "origin"),
    ("access-control-allow-origin", ORIGIN),
    ("access-control-allow-credentials", "true"),
)
ALB_HEADERS = (("Server", "awselb/2.0"), ("Content-Type", "text/html"), ("Content-Length", "122"))
ALB_BODY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
BODY = b'{"ok": true, "item": {"id": 1}}'


def rate(fn: Callable[[], object], seconds: float) -> float:
    n, batch = 0, 1000
    t0 = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    table = {"k": 1}
    cache = PreflightCache()

    def baseline() -> object:
        return table.get("k")

    def preflighted_request() -> object:
        # what the instrumented user does for one POST: cache check, preflight, actual
        now = time.monotonic()
        if needs_preflight(REQ) and not cache.allows(REQ, now):
            preflight_headers(REQ)
            pre = HttpResponse(200, PRE_HEADERS)
            v = evaluate_preflight(REQ, pre)
            attribute(200, PRE_HEADERS, b"")
            if v.ok:
                cache.store(REQ, pre, now)
        act = HttpResponse(201, ACT_HEADERS, BODY)
        attribute(201, ACT_HEADERS, BODY)
        return evaluate_actual(REQ, act)

    def uncached_preflighted_request() -> object:
        cache.clear(REQ)
        return preflighted_request()

    def simple_get() -> object:
        resp = HttpResponse(200, ACT_HEADERS, BODY)
        attribute(200, ACT_HEADERS, BODY)
        return evaluate_actual(GET, resp)

    def alb_502() -> object:
        resp = HttpResponse(502, ALB_HEADERS, ALB_BODY)
        attribute(502, ALB_HEADERS, ALB_BODY)
        return evaluate_actual(GET, resp)

    base = rate(baseline, args.seconds)
    print(f"baseline dict lookup: {base:,.0f}/s")
    print(f"{'case':40} {'calls/s':>12} {'us/call':>9} {'x baseline':>11}")
    for name, fn in [
        ("simple GET (evaluate + attribute)", simple_get),
        ("ALB 502 (evaluate + attribute)", alb_502),
        ("POST, preflight cached", preflighted_request),
        ("POST, preflight sent (cache miss)", uncached_preflighted_request),
    ]:
        r = rate(fn, args.seconds)
        print(f"{name:40} {r:12,.0f} {1e6 / r:9.1f} {base / r:11.0f}")
    # Context: a bare FastHttpUser on this kind of machine does ~3,700 req/s (~270 us each,
    # bench/README.md, load benchmarks); the CORS work must stay well under 10 % of that.


if __name__ == "__main__":
    main()
