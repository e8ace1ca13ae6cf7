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
    with_body_headers,
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
_BODY_SNIFF = 8192  # attribution reads the first 8 KiB of a body
_UNSET = object()
_MEMO_SIZE = 4096
# Headers that vary per response but change neither the CORS verdict nor the attribution.
_VOLATILE = frozenset(
    {
        "date",
        "x-albprobe-target",
        "content-length",
        "etag",
        "last-modified",
        "age",
        "expires",
        "set-cookie",
        "x-request-id",
        "x-amzn-requestid",
        "x-amzn-trace-id",
        "x-amz-cf-id",
        "cf-ray",
        "traceparent",
        "server-timing",
    }
)


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


def _target_of(items: tuple) -> str | None:
    """The target that answered: the testbed app's X-Albprobe-Target header (null on proxy pages)."""
    for k, v in items:
        if k.lower() == "x-albprobe-target":
            return v
    return None


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
            headers=with_body_headers(tuple(headers), ep.body),
            credentials="include" if credentials else "same-origin",
            force_preflight=force_preflight,
        )
        out.append(PreparedEndpoint(ep.name, ep.method, ep.path, ep.body, req))
    return out


def _socket_queue(session: Any, url: str) -> Any:
    """The client's queue of idle keep-alive sockets for this host (None = cannot tell).
    Looked up once per host: the lookup parses the URL, too slow for every request."""
    try:
        return session.client.clientpool.get_client(url)._connection_pool._socket_queue
    except Exception:
        return None


def close_idle_connections(session: Any, url: str) -> int:
    """Close the client's idle keep-alive sockets to ``url``'s host, so that the next request
    opens a new connection (a new client:port); returns how many were closed."""
    queue = _socket_queue(session, url)
    n = 0
    while queue is not None and queue.qsize():
        try:
            sock = queue.get(block=False)
        except Exception:  # emptied meanwhile
            break
        sock.close()
        n += 1
    return n


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
        user_id: int | None = None,
        worker_id: str = "local",
    ) -> None:
        # Imported here: importing locust monkey-patches the process (fine inside Locust only).
        from locust.contrib.fasthttp import FAILURE_EXCEPTIONS
        from locust.exception import CatchResponseError

        self._failures = FAILURE_EXCEPTIONS
        self._failure_exc = CatchResponseError
        self.session = session
        self.user_id = user_id
        self.worker_id = worker_id
        self._memo: dict[tuple, tuple] = {}
        self._memo_raw: dict[tuple, tuple] = {}
        self._wire: dict[tuple[str, str], dict[str, str]] = {}
        self._body_fps = any(getattr(f, "body_pattern", None) for f in fingerprints)
        # Headers a user fingerprint reads are never volatile: the memo key must keep them.
        self._volatile = _VOLATILE - {
            f.header.lower() for f in fingerprints if getattr(f, "header", None)
        }
        # A browser judges each redirect hop itself (CORS applies per hop): never auto-follow.
        session.client.redirect_response_codes = frozenset()
        self.mode = mode
        self.cache = PreflightCache(mode)
        self.cookie = os.environ.get(cookie_env) if cookie_env else None
        self.fingerprints = tuple(fingerprints)
        self.acquire = acquire or (lambda: None)
        self._idle_queues: dict[str, Any] = {}
        # Keyed by the request's identity, not its value (hashing a CorsRequest re-hashes every
        # field): a caller's requests are its prepared endpoints', alive as long as it is.
        self._needs_preflight: dict[int, bool] = {}

    def call(self, ep: PreparedEndpoint, intended_ts: float | None = None) -> bool:
        """Send what the browser sends for one fetch(); True when the script would get a response."""
        req = ep.request
        needed = self._needs_preflight.get(id(req))
        if needed is None:  # a pure function of the request: once per endpoint
            needed = self._needs_preflight[id(req)] = needs_preflight(req, self.mode)
        preflight = needed and (req.force_preflight or not self.cache.allows(req, time.time()))
        if preflight and not self.send(ep, "preflight", intended_ts):
            return False  # the browser never sends the actual request
        return self.send(ep, "actual", intended_ts)

    def forget(self) -> None:
        """Drop the memos keyed by request identity: call it before the requests they were built
        from can die (their ids may then be reused by other requests)."""
        self._memo.clear()
        self._memo_raw.clear()
        self._needs_preflight.clear()

    def send(
        self,
        ep: PreparedEndpoint,
        kind: str,
        intended_ts: float | None,
        wire_extra: dict[str, str] | None = None,
    ) -> bool:
        """One HTTP exchange, judged, then reported as exactly one Locust request event.

        ``kind`` is "preflight" (the OPTIONS for ``ep``) or "actual". ``wire_extra``: headers sent
        but not part of the browser's request (not judged by CORS): the replay's testbed-only
        sleep header.

        The request goes straight through geventhttpclient (cookies and pooling as FastHttpUser
        has them) and the event is fired here, as Locust documents for custom clients: Locust's
        catch_response machinery costs more per request than the judging itself.
        """
        req = ep.request
        if kind == "preflight":
            method, body, name = "OPTIONS", None, f"preflight {ep.name}"
        else:
            method, body, name = ep.method, ep.body, ep.name
        headers = self._wire.get((kind, ep.name))
        if headers is None:  # built once per endpoint; urlopen copies it into its own Headers
            if kind == "preflight":
                headers = dict(preflight_headers(req, self.mode))
            else:
                cookie = self.cookie if req.credentials == "include" else None
                headers = dict(actual_headers(req, self.mode, cookie=cookie))
            self._wire[(kind, ep.name)] = headers
        if wire_extra:
            headers = {**headers, **wire_extra}
        self.acquire()
        queue = self._idle_queues.get(req.url, _UNSET)
        if queue is _UNSET:
            queue = self._idle_queues[req.url] = _socket_queue(self.session, req.url)
        reused = None if queue is None else queue.qsize() > 0
        start_time = time.time()
        t0 = time.perf_counter()
        resp = error = None
        try:
            resp = self.session.client.urlopen(
                req.url, method=method, payload=body, headers=headers
            )
            content = resp.content or b""
        except self._failures as exc:
            resp = getattr(exc, "response", None)
            content = (resp.content or b"") if resp is not None else b""
            if resp is None or not getattr(resp, "status_code", 0):
                resp, error = None, exc
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        status = resp.status_code if resp is not None else 0
        target = None
        if status:
            items = tuple(resp.headers.items()) if resp.headers else ()
            target = _target_of(items)
            verdict, att = self._judge(kind, req, status, items, content[:_BODY_SNIFF])
        else:
            att = attribute(0, (), None, error)
            verdict = network_verdict(req, error, phase=kind)
        err_name = att.evidence if status == 0 else None
        label = failure_label(status, att.source, verdict.ok, verdict.step, err_name)
        # The context is the finished run-directory row: the recorder appends it as it is.
        self.session.request_event.fire(
            request_type=method,
            name=name,
            response_time=elapsed_ms,
            response_length=len(content),
            response=resp,
            exception=self._failure_exc(label) if label else None,
            start_time=start_time,
            url=req.url,
            context={
                "ts": start_time,
                "intended_ts": intended_ts,
                "kind": kind,
                "endpoint": ep.name,
                "method": method,
                "path": ep.path,
                "status": status,
                "source": att.source,
                "source_evidence": att.evidence,
                "cors_ok": verdict.ok,
                "cors_step": verdict.step,
                "cors_message": verdict.message,
                "latency_ms": elapsed_ms,
                "co_latency_ms": (start_time - intended_ts) * 1000.0 + elapsed_ms
                if intended_ts
                else None,
                "bytes": len(content),
                "error": err_name,
                "conn_reused": reused,
                "worker_id": self.worker_id,
                "user_id": self.user_id,
                "target": target,
            },
        )
        return status != 0 and verdict.ok

    def _judge(self, kind: str, req: CorsRequest, status: int, items: tuple, body: bytes):
        """(CORS verdict, attribution) of a response, memoised.

        Both are pure functions of the request, the status, the headers and (for error pages, or
        when a user fingerprint reads bodies) the body's start; volatile headers (Date, lengths,
        ids) change neither, so they are left out of the key. Under load most responses repeat
        one of a few shapes, and a lookup is far cheaper than a header scan.
        """
        rid = id(req)  # see _needs_preflight
        raw_key = (kind, rid, status, items, body)
        hit = self._memo_raw.get(raw_key)  # identical bytes (same Date second): no scan at all
        if hit is not None:
            return hit
        stable = tuple(h for h in items if h[0].lower() not in self._volatile)
        key = (kind, rid, status, stable, body if (status >= 300 or self._body_fps) else b"")
        hit = self._memo.get(key)
        if hit is None:
            hr = HttpResponse(status, items, body)
            att = attribute(status, items, body, None, extra=self.fingerprints)
            verdict = (evaluate_preflight if kind == "preflight" else evaluate_actual)(
                req, hr, self.mode
            )
            if kind == "preflight" and verdict.ok:
                self.cache.store(req, hr, time.time())
                return verdict, att  # a stored preflight's Max-Age matters: judge these afresh
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            hit = self._memo[key] = (verdict, att)
        if len(self._memo_raw) >= _MEMO_SIZE:
            self._memo_raw.clear()
        self._memo_raw[raw_key] = hit
        return hit
