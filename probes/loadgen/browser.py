"""One browser's fetch(): the OPTIONS preflight when Chromium would send one, then the actual request,
each judged (CORS verdict) and attributed (who produced it) as it comes back.

Runs inside a Locust FastHttpUser: ``session`` is its ``self.client``. The per-request facts travel to
the recorder in Locust's request ``context``, so the recorder sees exactly the requests Locust counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from probes.attribution import attribute
from probes.cors import (
    CorsRequest,
    HttpResponse,
    PreflightCache,
    actual_headers,
    evaluate_actual,
    evaluate_preflight,
    needs_preflight,
    network_verdict,
    preflight_headers,
)

# Short CORS reasons for Locust's failure names, e.g. "502 proxy (no ACAO)".
_SHORT = {
    "allow-origin-missing": "no ACAO",
    "allow-origin-mismatch": "ACAO mismatch",
    "allow-origin-wildcard-credentials": "ACAO * with credentials",
    "allow-origin-multiple": "multiple ACAO",
    "allow-origin-invalid": "invalid ACAO",
    "allow-credentials": "ACAC not true",
    "allow-methods": "method not allowed",
    "allow-methods-invalid": "bad Allow-Methods",
    "allow-headers": "header not allowed",
    "allow-headers-invalid": "bad Allow-Headers",
    "preflight-status": "preflight not ok",
    "preflight-redirect": "preflight redirect",
    "redirect-credentials": "redirect",
    "request-invalid": "invalid request",
}
_BODY_SNIFF = 4096  # attribution looks at the start of the body only


def failure_label(
    status: int, source: str, cors_ok: bool, step: str | None, error: str | None
) -> str | None:
    """How Locust names a failed request: status, source and the CORS reason; None = success."""
    if status == 0:
        return f"0 network ({error or 'no response'})"
    if not cors_ok:
        return f"{status} {source} ({_SHORT.get(step or '', step or 'CORS')})"
    if status >= 400:
        return f"{status} {source} (CORS ok)"
    return None


@dataclass(frozen=True)
class PreparedEndpoint:
    name: str
    method: str
    path: str
    body: str | None
    request: CorsRequest


def prepare_endpoints(
    base_url: str,
    endpoints: Sequence[Any],
    origin: str,
    credentials: bool,
    force_preflight: bool,
    auth_env: str | None,
) -> list[PreparedEndpoint]:
    """Build the CorsRequest of each configured endpoint once (the evaluator memoises on it).

    The Authorization value is read from the environment here and lives only in memory.
    """
    auth = os.environ.get(auth_env) if auth_env else None
    out = []
    for ep in endpoints:
        headers = list(ep.headers.items())
        if auth:
            headers.append(("Authorization", auth))
        req = CorsRequest(
            url=base_url.rstrip("/") + ep.path,
            origin=origin,
            method=ep.method,
            headers=tuple(headers),
            credentials="include" if credentials else "same-origin",
            force_preflight=force_preflight,
        )
        out.append(PreparedEndpoint(ep.name, ep.method, ep.path, ep.body, req))
    return out


def _idle_connections(session: Any, url: str) -> int | None:
    """How many idle keep-alive connections the client holds for this host (None = unknown)."""
    try:
        pool = session.client.clientpool.get_client(url)._connection_pool
        return pool._socket_queue.qsize()
    except Exception:
        return None


class BrowserCaller:
    """The fetch() of one simulated browser: its own preflight cache, shared rate limiter."""

    def __init__(
        self,
        session: Any,
        *,
        mode: str = "chrome",
        cookie_env: str | None = None,
        fingerprints: Sequence[Any] = (),
        acquire: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.mode = mode
        self.cache = PreflightCache(mode)
        self.cookie = os.environ.get(cookie_env) if cookie_env else None
        self.fingerprints = tuple(fingerprints)
        self.acquire = acquire or (lambda: None)

    def call(self, ep: PreparedEndpoint, intended_ts: float | None = None) -> bool:
        """Send what the browser sends for one fetch(); True when the script would get a response."""
        req = ep.request
        preflight = needs_preflight(req, self.mode) and (
            req.force_preflight or not self.cache.allows(req, time.time())
        )
        if preflight and not self._send(ep, "preflight", intended_ts):
            return False  # the browser never sends the actual request
        return self._send(ep, "actual", intended_ts)

    def _send(self, ep: PreparedEndpoint, kind: str, intended_ts: float | None) -> bool:
        req = ep.request
        if kind == "preflight":
            method, headers, body, name = (
                "OPTIONS",
                preflight_headers(req, self.mode),
                None,
                f"preflight {ep.name}",
            )
        else:
            headers = actual_headers(
                req, self.mode, cookie=self.cookie if req.credentials == "include" else None
            )
            method, body, name = ep.method, ep.body, ep.name
        self.acquire()
        idle = _idle_connections(self.session, req.url)
        ctx: dict[str, Any] = {
            "albprobe": True,
            "kind": kind,
            "endpoint": ep.name,
            "path": ep.path,
            "intended_ts": intended_ts,
            "conn_reused": None if idle is None else idle > 0,
        }
        with self.session.request(
            method,
            ep.path,
            name=name,
            data=body,
            headers=dict(headers),
            catch_response=True,
            allow_redirects=False,
            context=ctx,
        ) as resp:
            status = resp.status_code or 0
            error = getattr(resp, "error", None) if not status else None
            if status:
                content = resp.content or b""
                hr = HttpResponse(
                    status,
                    tuple(resp.headers.items()) if resp.headers else (),
                    content[:_BODY_SNIFF],
                )
                att = attribute(status, hr.headers, hr.body, None, extra=self.fingerprints)
                verdict = (evaluate_preflight if kind == "preflight" else evaluate_actual)(
                    req, hr, self.mode
                )
                if kind == "preflight" and verdict.ok:
                    self.cache.store(req, hr, time.time())
            else:
                att = attribute(0, (), None, error)
                verdict = network_verdict(req, error, phase=kind)
            err_name = att.evidence if status == 0 else None
            # Locust copies the context it was given; the one it will report is request_meta's.
            ctx = resp.request_meta["context"]
            ctx.update(
                status=status,
                source=att.source,
                source_evidence=att.evidence,
                cors_ok=verdict.ok,
                cors_step=verdict.step,
                cors_message=verdict.message,
                error=err_name,
            )
            label = failure_label(status, att.source, verdict.ok, verdict.step, err_name)
            if label:
                resp.failure(label)
            else:
                resp.success()
        return status != 0 and verdict.ok
