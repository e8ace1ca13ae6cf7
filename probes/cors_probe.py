"""One-shot, browser-faithful CORS probe with httpx: for each endpoint, the OPTIONS preflight
(when the browser would send one, with Chromium's headers and no cookies), then the actual request
(only if the preflight passed, as in the browser), following redirects hop by hop. Every
response gets the browser's verdict and a source attribution. Endpoints run concurrently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import httpx

from probes.attribution import attribute
from probes.cors import (
    CorsRequest,
    CorsVerdict,
    HttpResponse,
    actual_headers,
    evaluate_actual,
    evaluate_preflight,
    needs_preflight,
    preflight_headers,
    redirected_request,
    with_body_headers,
)
from probes.cors.neterrors import error_class
from probes.tls_trust import httpx_verify

MAX_REDIRECTS = 20  # Fetch's redirect limit
_SHOWN_HEADERS = frozenset(
    {
        "server",
        "content-type",
        "vary",
        "via",
        "x-cache",
        "proxy-status",
        "location",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
        "access-control-expose-headers",
    }
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None


@dataclass(frozen=True)
class Exchange:
    """One HTTP request on the wire and what came back (headers: CORS-relevant ones only)."""

    kind: str  # "preflight" | "actual"
    method: str
    url: str
    status: int | None
    source: str
    evidence: str
    latency_ms: float
    error: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    endpoint: str
    url: str
    method: str
    origin: str
    verdict: CorsVerdict
    preflight: Exchange | None = None
    actual: Exchange | None = None  # the last hop when redirects were followed
    hops: tuple[Exchange, ...] = field(default=())  # every actual-request hop, in order

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    @property
    def failing_source(self) -> str | None:
        """Who produced the response the browser rejected (None when it passed)."""
        if self.ok:
            return None
        ex = self.preflight if self.verdict.phase == "preflight" else self.actual
        return ex.source if ex else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["failing_source"] = self.failing_source
        return d


@dataclass(frozen=True)
class ProbeOptions:
    origin: str
    mode: str = "chrome"  # whose verdict and words: chrome | firefox | webkit | spec
    credentials: str = "include"
    initiator: str = "fetch"
    timeout: float = 10.0
    concurrency: int = 16
    verify_tls: bool = True
    ca_bundle: str | None = None  # PEM of the CAs to trust (None = the system's)
    cookie: str | None = None  # sent on actual requests only, and only with credentials include
    user_agent: str | None = None  # None: the chosen engine's own (probes.cors.wire)
    fingerprints: Sequence[Any] = ()


async def _send(
    client: httpx.AsyncClient,
    kind: str,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: str | None,
    opts: ProbeOptions,
) -> tuple[Exchange, HttpResponse | None, BaseException | None]:
    t0 = time.perf_counter()
    try:
        # httpx sends the client's transport headers, then ours in our order (the browser's)
        r = await client.request(method, url, headers=headers, content=body)
    except (httpx.TransportError, OSError) as exc:
        ms = (time.perf_counter() - t0) * 1000
        a = attribute(None, None, None, exc)
        name = "timeout" if isinstance(exc, httpx.TimeoutException) else error_class(exc)
        return Exchange(kind, method, url, None, a.source, a.evidence, ms, name), None, exc
    ms = (time.perf_counter() - t0) * 1000
    raw = tuple(r.headers.multi_items())
    a = attribute(r.status_code, raw, r.content, extra=opts.fingerprints)
    shown = tuple((k, v) for k, v in raw if k.lower() in _SHOWN_HEADERS)
    ex = Exchange(kind, method, url, r.status_code, a.source, a.evidence, ms, None, shown)
    return ex, HttpResponse(r.status_code, raw, r.content), None


async def probe_endpoint(
    client: httpx.AsyncClient, ep: Endpoint, opts: ProbeOptions
) -> ProbeResult:
    headers = with_body_headers(ep.headers, ep.body)
    req = CorsRequest(ep.url, opts.origin, ep.method, headers, opts.credentials, opts.initiator)
    preflight_ex = None
    warnings: tuple[str, ...] = ()
    pre_console: tuple[str, ...] = ()  # e.g. Firefox's warning on a passed preflight
    if needs_preflight(req, opts.mode):
        hdrs = preflight_headers(req, opts.mode, user_agent=opts.user_agent)
        preflight_ex, resp, err = await _send(
            client, "preflight", "OPTIONS", ep.url, hdrs, None, opts
        )
        v = evaluate_preflight(req, resp, opts.mode, error=err)
        if not v.ok:  # the browser stops here: the actual request is never sent
            return ProbeResult(ep.name, ep.url, req.method, opts.origin, v, preflight_ex)
        warnings, pre_console = v.warnings, v.console
    hops: list[Exchange] = []
    hop_req, body = req, ep.body
    while True:
        hdrs = actual_headers(hop_req, opts.mode, user_agent=opts.user_agent, cookie=opts.cookie)
        ex, resp, err = await _send(client, "actual", hop_req.method, hop_req.url, hdrs, body, opts)
        hops.append(ex)
        v = evaluate_actual(hop_req, resp, opts.mode, error=err)
        nxt = redirected_request(hop_req, resp) if (v.ok and resp is not None) else None
        if nxt is None or len(hops) > MAX_REDIRECTS:
            break
        if nxt.method != hop_req.method:
            body = None
        hop_req = nxt
    verdict = replace(
        v,
        warnings=warnings + v.warnings,
        preflight_sent=preflight_ex is not None,
        console=pre_console + v.console,
    )
    return ProbeResult(
        ep.name, ep.url, req.method, opts.origin, verdict, preflight_ex, hops[-1], tuple(hops)
    )


async def probe_all(endpoints: Sequence[Endpoint], opts: ProbeOptions) -> list[ProbeResult]:
    sem = asyncio.Semaphore(max(1, opts.concurrency))
    limits = httpx.Limits(max_connections=max(1, opts.concurrency))
    async with httpx.AsyncClient(
        timeout=opts.timeout,
        follow_redirects=False,
        verify=httpx_verify(opts.ca_bundle, opts.verify_tls),
        limits=limits,
    ) as client:

        async def one(ep: Endpoint) -> ProbeResult:
            async with sem:
                return await probe_endpoint(client, ep, opts)

        return list(await asyncio.gather(*(one(ep) for ep in endpoints)))


def probe(endpoints: Sequence[Endpoint], opts: ProbeOptions) -> list[ProbeResult]:
    """Synchronous entry point (the CLI, origin-check, tests)."""
    return asyncio.run(probe_all(endpoints, opts))
