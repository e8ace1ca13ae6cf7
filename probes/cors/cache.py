"""The CORS-preflight cache, with Chromium's semantics (services/network/cors/preflight_cache.cc
and preflight_result.cc) or the Fetch standard's (``mode="spec"``; Firefox and WebKit use it too,
with their own handling of fetch cache modes).

chrome: one entry per (origin, URL); a new preflight replaces it; Max-Age absent -> 5 s,
        negative -> 0 (not cached), capped at 2 h; an entry made without credentials does not
        serve a credentialed request; `*` methods/headers count only for non-credentialed entries.
spec:   one entry per (origin, URL, credentials, method or header name) with its own expiry;
        entries accumulate; `*` never covers Authorization.
Bounded: the least recently used (origin, URL) key is evicted past ``max_entries``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from probes.cors.evaluate import (
    MODES,
    SAFELISTED_METHODS,
    CorsRequest,
    HttpResponse,
    _derive,
    parse_allow_list,
    parse_max_age,
)


@dataclass
class _Entry:
    credentials: bool
    methods: frozenset[str]
    headers: frozenset[str]
    expires: float


# Chromium's PreflightController looks the cache up only when the request has none of the load
# flags VALIDATE_CACHE, BYPASS_CACHE, DISABLE_CACHE, i.e. fetch cache modes no-cache, reload and
# no-store; a no-store (DISABLE_CACHE) request's preflight result is not stored either.
BYPASS_LOOKUP = frozenset({"no-store", "reload", "no-cache"})
BYPASS_STORE = frozenset({"no-store"})
# Observed on the real engines (tests/cors/test_cors_firefox.py, test_cors_webkit.py): Firefox
# skips the lookup for no-store and reload only and stores every result; WebKit's preflight
# cache ignores the fetch cache mode altogether.
_BYPASS = {
    "chrome": (BYPASS_LOOKUP, BYPASS_STORE),
    "spec": (BYPASS_LOOKUP, BYPASS_STORE),
    "firefox": (frozenset({"no-store", "reload"}), frozenset()),
    "webkit": (frozenset(), frozenset()),
}


class PreflightCache:
    def __init__(self, mode: str = "chrome", max_entries: int = 1024) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self._bypass_lookup, self._bypass_store = _BYPASS[mode]
        self.max_entries = max_entries
        # chrome: key -> _Entry;  spec: key -> {(credentials, kind, name): expiry}
        self._entries: OrderedDict[tuple[str, str], object] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def allows(self, req: CorsRequest, now: float) -> bool:
        """True when a cached preflight result lets ``req`` go without a new preflight."""
        if req.cache in self._bypass_lookup:
            return False
        d = _derive(req, self.mode)
        key = (d.origin, d.cache_url)
        entry = self._entries.get(key)
        if entry is None:
            return False
        if self.mode == "chrome":
            return self._chrome_allows(entry, d, now)  # type: ignore[arg-type]
        return self._spec_allows(entry, d, req, now)  # type: ignore[arg-type]

    @staticmethod
    def _chrome_allows(e: _Entry, d, now: float) -> bool:  # type: ignore[no-untyped-def]
        if e.expires <= now:
            return False
        if not e.credentials and d.include:
            return False
        m = d.method
        if not (
            m in e.methods or m in SAFELISTED_METHODS or (not e.credentials and "*" in e.methods)
        ):
            return False
        if not e.credentials and "*" in e.headers:
            return True
        return all(name in e.headers for name in d.unsafe)

    @staticmethod
    def _spec_allows(entries: dict, d, req: CorsRequest, now: float) -> bool:  # type: ignore[no-untyped-def]
        def live(kind: str, name: str) -> bool:
            for creds in (True, False) if not d.include else (True,):
                exp = entries.get((creds, kind, name))
                if exp is not None and exp > now:
                    return True
            return False

        def wildcard(kind: str) -> bool:
            # `*` entries exist only from non-credentialed preflights and serve only
            # non-credentialed requests.
            exp = entries.get((False, kind, "*"))
            return not d.include and exp is not None and exp > now

        if (req.force_preflight or d.method not in SAFELISTED_METHODS) and not (
            live("method", d.method) or wildcard("method")
        ):
            return False
        for name in d.unsafe:
            if live("header", name):
                continue
            if name != "authorization" and wildcard("header"):
                continue
            return False
        return True

    def store(self, req: CorsRequest, resp: HttpResponse, now: float) -> None:
        """Record a *successful* preflight response for ``req`` (call after
        evaluate_preflight(...).ok)."""
        if req.cache in self._bypass_store:
            return
        d = _derive(req, self.mode)
        h = resp.cors
        methods = parse_allow_list(h.acam, lower=False)
        headers = parse_allow_list(h.acah, lower=True)
        if methods is None or headers is None:
            return
        max_age = parse_max_age(h.max_age, self.mode)
        key = (d.origin, d.cache_url)
        if max_age <= 0:
            if self.mode == "chrome":
                self._entries.pop(key, None)
            return
        expires = now + max_age
        if self.mode == "chrome":
            self._entries[key] = _Entry(d.include, methods, headers, expires)
        else:
            entries = self._entries.get(key)
            if not isinstance(entries, dict):
                entries = {}
            for m in methods:
                entries[(d.include, "method", m)] = expires
            if not methods and (req.force_preflight or d.method not in SAFELISTED_METHODS):
                entries[(d.include, "method", d.method)] = expires
            for name in headers:
                entries[(d.include, "header", name)] = expires
            self._entries[key] = entries
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self, req: CorsRequest) -> None:
        """Drop what is cached for ``req``'s (origin, URL) (Fetch: after a failed fetch)."""
        d = _derive(req, self.mode)
        self._entries.pop((d.origin, d.cache_url), None)
