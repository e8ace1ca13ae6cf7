"""The browser's CORS verdict for one request, as Chromium makes it (``chrome``), as Firefox or
WebKit make it (``firefox``, ``webkit``), or as the Fetch standard says (``spec``). Pure: no
network, no clock. The verdict names an engine-neutral failed check (``step``); each engine then
renders its own console lines (probes.cors.messages*).

Chromium's check order (services/network/cors/preflight_controller.cc, cors.cc), confirmed
against headless Chromium 156 by tests/cors/test_cors_browser.py:

preflight: redirect (3xx + Location) -> Allow-Origin / Allow-Credentials (with the *actual*
request's credentials mode) -> HTTP ok status -> parse Allow-Methods / Allow-Headers ->
method -> headers.   actual: Allow-Origin / Allow-Credentials (any status) -> redirect rules.
Firefox 153 (tests/cors/test_cors_firefox.py) makes the same decisions, except that on a
redirected preflight it checks Allow-Origin / Allow-Credentials before the redirect. WebKit 2.50
(test_cors_webkit.py) checks the preflight's status first (a redirect is just a non-ok status)
and lets `*` in Allow-Headers cover Authorization without a word.

The Locust user calls these on every request, so derived request facts are memoised per
(request, mode) and response header lookups are done once per response object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

from probes.cors import messages as M
from probes.cors.neterrors import net_error
from probes.cors.requestside import (
    SAFELISTED_METHODS,
    display_url,
    is_forbidden_method,
    normalize_method,
    serialize_origin,
    unsafe_header_names,
    url_origin,
)

MODES = ("chrome", "firefox", "webkit", "spec")
CREDENTIALS_MODES = ("omit", "same-origin", "include")
REQUEST_MODES = ("cors", "same-origin", "no-cors")
CACHE_MODES = ("default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached")
INITIATORS = ("fetch", "xhr")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHROME_MAX_AGE_CAP = 7200.0  # Chromium caps Access-Control-Max-Age at 2 hours
# Each engine's cap on Access-Control-Max-Age, from its source (docs/cors.md cites them):
# Chromium preflight_result.cc kMaxTimeout (2 h), Firefox nsCORSListenerProxy.cpp
# AddResultToCache (86400 s), WebKit CrossOriginPreflightResultCache.cpp
# maxPreflightCacheTimeout (600 s). The spec sets none.
MAX_AGE_CAP = {"chrome": CHROME_MAX_AGE_CAP, "firefox": 86400.0, "webkit": 600.0}
_SIGNED_INT = re.compile(r"[+-]?[0-9]+")
DEFAULT_MAX_AGE = 5.0  # Fetch: "the number of seconds (5 by default)"

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.S)
_HOST_CHARS = re.compile(r"^[^\s/\\?#@<>^|%]*(?::\d*)?$")
_OWS = " \t"


@dataclass(frozen=True)
class CorsRequest:
    """What the page's script asked for (the browser adds Origin, Accept, Sec-Fetch-*)."""

    url: str
    origin: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()  # author (JS-set) request headers
    credentials: str = "include"  # fetch credentials mode: omit | same-origin | include
    initiator: str = "fetch"  # "fetch" or "xhr" (changes the message wording only)
    force_preflight: bool = False  # Fetch's use-CORS-preflight flag (e.g. XHR upload listeners)
    redirected_from: str | None = None  # initial URL when this hop follows a redirect
    mode: str = "cors"  # fetch request mode: cors | same-origin | no-cors
    cache: str = "default"  # fetch cache mode (no-store/reload/no-cache skip the preflight cache)

    def __post_init__(self) -> None:
        if self.cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, got {self.cache!r}")
        if self.credentials not in CREDENTIALS_MODES:
            raise ValueError(
                f"credentials must be one of {CREDENTIALS_MODES}, got {self.credentials!r}"
            )
        if self.mode not in REQUEST_MODES:
            raise ValueError(f"mode must be one of {REQUEST_MODES}, got {self.mode!r}")
        if self.initiator not in INITIATORS:
            raise ValueError(f"initiator must be one of {INITIATORS}, got {self.initiator!r}")
        if not isinstance(self.headers, tuple):  # keep the request hashable (memoisation)
            object.__setattr__(self, "headers", tuple((str(k), str(v)) for k, v in self.headers))


@dataclass(frozen=True)
class _CorsHeaders:
    """The response headers CORS reads, combined like Chromium's GetNormalizedHeader."""

    acao: str | None
    acac: str | None
    acam: str | None
    acah: str | None
    max_age: str | None
    location: str | None
    vary: str | None
    pna: str | None
    acao_repeated: bool = False  # Access-Control-Allow-Origin came on several header lines


_WANTED = {
    "access-control-allow-origin": "acao",
    "access-control-allow-credentials": "acac",
    "access-control-allow-methods": "acam",
    "access-control-allow-headers": "acah",
    "access-control-max-age": "max_age",
    "location": "location",
    "vary": "vary",
    "access-control-allow-private-network": "pna",
}


def _items(headers: Any) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return headers.items()
    if hasattr(headers, "multi_items"):  # httpx.Headers keeps repeated headers this way
        return headers.multi_items()
    return headers


@dataclass(frozen=True)
class HttpResponse:
    """A response as received: repeated headers kept, names in any case."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    redirect_location: str | None = None  # None = take it from the Location header

    @cached_property
    def cors(self) -> _CorsHeaders:
        found: dict[str, str] = {}
        repeated = False
        for name, value in _items(self.headers):
            key = _WANTED.get(name.lower())
            if key is not None:
                v = value.strip(_OWS)
                if key in found:
                    found[key] = f"{found[key]}, {v}"
                    repeated = repeated or key == "acao"
                else:
                    found[key] = v
        if self.redirect_location is not None:
            found["location"] = self.redirect_location
        get = found.get
        return _CorsHeaders(
            get("acao"),
            get("acac"),
            get("acam"),
            get("acah"),
            get("max_age"),
            get("location"),
            get("vary"),
            get("pna"),
            repeated,
        )

    @property
    def is_redirect(self) -> bool:
        return self.status in REDIRECT_STATUSES and bool(self.cors.location)


@dataclass(frozen=True)
class CorsVerdict:
    ok: bool
    step: str | None  # stable id, see probes.cors.messages.STEPS
    message: str | None  # the engine's reason line (or the JS error for network failures)
    warnings: tuple[str, ...] = ()
    preflight_sent: bool = False
    phase: str | None = None  # "preflight" | "actual" | None (passed)
    net_error: str | None = None  # e.g. "net::ERR_CONNECTION_REFUSED" for step "network"
    console: tuple[str, ...] = ()  # every console line the engine prints, in its order
    js_error: str | None = None  # what the page's script gets (None when it passed)


_OK = CorsVerdict(True, None, None)
_OK_PREFLIGHT = CorsVerdict(True, None, None, preflight_sent=True)


@dataclass(frozen=True)
class _Derived:
    method: str
    origin: str
    url: str  # as printed in messages
    cache_url: str  # fragment-less, for the preflight cache key
    same_origin: bool
    include: bool
    unsafe: tuple[str, ...]
    has_authorization: bool
    needs_preflight: bool
    invalid: str | None  # "forbidden-method" | "no-cors-method" | "mode" | "scheme" | None
    redirected_from: str | None = field(default=None)
    engine: str = "chrome"  # whose words: "spec" is worded as Chromium
    host: str = ""
    scheme: str = ""


@lru_cache(maxsize=4096)
def _derive(req: CorsRequest, mode: str) -> _Derived:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    method = normalize_method(req.method)
    origin = serialize_origin(req.origin)
    same_origin = origin != "null" and url_origin(req.url) == origin
    unsafe = unsafe_header_names(req.headers, mode)
    scheme = urlsplit(req.url).scheme.lower()
    invalid = None  # refused by Blink before the network: nothing is sent
    if is_forbidden_method(method):
        invalid = "forbidden-method"
    elif req.mode == "no-cors" and method not in SAFELISTED_METHODS:
        invalid = "no-cors-method"
    elif scheme not in ("http", "https"):
        invalid = "scheme"
    elif req.mode == "same-origin" and not same_origin:
        invalid = "mode"
    needs = (
        not same_origin
        and invalid is None
        and req.mode == "cors"
        and (req.force_preflight or method not in SAFELISTED_METHODS or bool(unsafe))
    )
    return _Derived(
        method=method,
        origin=origin,
        url=display_url(req.url),
        cache_url=req.url.split("#", 1)[0],
        same_origin=same_origin,
        include=req.credentials == "include",
        unsafe=unsafe,
        has_authorization="authorization" in unsafe,
        needs_preflight=needs,
        invalid=invalid,
        redirected_from=display_url(req.redirected_from) if req.redirected_from else None,
        engine=mode if mode in M.ENGINES else "chrome",
        host=urlsplit(req.url).hostname or "",
        scheme=scheme,
    )


def needs_preflight(req: CorsRequest, mode: str = "chrome") -> bool:
    """Whether the browser sends an OPTIONS preflight before ``req`` (cache aside)."""
    return _derive(req, mode).needs_preflight


def cors_unsafe_headers(req: CorsRequest, mode: str = "chrome") -> tuple[str, ...]:
    """The value of Access-Control-Request-Headers, as a sorted tuple of lower-cased names."""
    return _derive(req, mode).unsafe


def _gurl_valid(value: str) -> bool:
    """Roughly GURL(value).is_valid(): a scheme, and a host for the special schemes."""
    m = _SCHEME.match(value)
    if not m:
        return False
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme in ("http", "https", "ws", "wss", "ftp"):
        authority = rest.lstrip("/\\").split("/", 1)[0]
        host = authority.rsplit("@", 1)[-1]
        return bool(host) and bool(_HOST_CHARS.match(host)) and " " not in value
    return " " not in value


def allow_origin_failure(acao: str) -> str:
    """The check an Access-Control-Allow-Origin value that is present, not `*` and not the
    request's origin fails: Chromium's error classes (cors.cc), which the step ids follow for
    every engine. `albprobe explain` uses it to read a quoted value back (Firefox prints the
    same "does not match" for all three)."""
    if " " in acao or "," in acao:
        return M.ALLOW_ORIGIN_MULTIPLE
    if acao == "null":
        return M.ALLOW_ORIGIN_MISMATCH
    if not _gurl_valid(acao):
        return M.ALLOW_ORIGIN_INVALID
    return M.ALLOW_ORIGIN_MISMATCH


def _check_access(h: _CorsHeaders, d: _Derived) -> tuple[str, str] | None:
    """Chromium's CheckAccess (cors.cc): the Fetch CORS check with Chromium's error classes."""
    acao = h.acao
    if acao == "*":
        return (M.ALLOW_ORIGIN_WILDCARD, "") if d.include else None
    if acao is None:
        return M.ALLOW_ORIGIN_MISSING, ""
    if acao != d.origin:
        return allow_origin_failure(acao), acao
    if d.include and h.acac != "true":
        return M.ALLOW_CREDENTIALS, h.acac or ""
    return None


@lru_cache(maxsize=1024)  # servers send the same few values over and over
def parse_allow_list(value: str | None, lower: bool) -> frozenset[str] | None:
    """Access-Control-Allow-Methods/-Headers: comma list of tokens (empty items skipped);
    None on a parse failure. Methods keep their case; header names are lower-cased."""
    if value is None:
        return frozenset()
    out = set()
    for item in value.split(","):
        item = item.strip(_OWS)
        if not item:
            continue
        if not _TOKEN.match(item):
            return None
        out.add(item.lower() if lower else item)
    return frozenset(out)


def first_bad_token(value: str) -> str:
    """The first list item that is not a token (what Firefox quotes in its message)."""
    for item in value.split(","):
        item = item.strip(_OWS)
        if item and not _TOKEN.match(item):
            return item
    return ""


@lru_cache(maxsize=256)
def parse_max_age(value: str | None, mode: str = "chrome") -> float:
    """Seconds a preflight result may be cached (<= 0: not cached), 5 when absent. Chromium:
    5 when unparsable, a negative value 0, capped at 2 h. Firefox: anything but digits is not
    cached, capped at 24 h. WebKit: a signed integer (negative: expired at once), else 5,
    capped at 10 min. The spec: delta-seconds only, else 5, no cap."""
    if value is None:
        return DEFAULT_MAX_AGE
    if mode == "spec":
        return float(int(value)) if value.isdigit() and value.isascii() else DEFAULT_MAX_AGE
    if mode == "firefox":
        if not value:  # an empty header reads as absent
            return DEFAULT_MAX_AGE
        digits = value.isdigit() and value.isascii()
        return min(float(int(value)), MAX_AGE_CAP["firefox"]) if digits else 0.0
    if mode == "webkit":
        if not _SIGNED_INT.fullmatch(value):
            return DEFAULT_MAX_AGE
        return min(float(int(value)), MAX_AGE_CAP["webkit"])
    v = value[1:] if value[:1] in "+-" else value
    if not v or not v.isdigit() or not v.isascii():
        return DEFAULT_MAX_AGE
    seconds = int(value)
    if seconds < 0:
        return 0.0
    return min(float(seconds), CHROME_MAX_AGE_CAP)


def _script_header(req: CorsRequest, name: str) -> str:
    """``name`` (lower case) as the script spelled it."""
    return next((k for k, _ in req.headers if k.lower() == name), name)


def _failure(
    d: _Derived,
    req: CorsRequest,
    step: str,
    param: str = "",
    *,
    preflight: bool = False,
    resp: HttpResponse | None = None,
    **extra: Any,
) -> M.Failure:
    if resp is not None and resp.is_redirect:
        raw = urljoin(req.url, resp.cors.location or "")
        extra.setdefault("redirect_raw", raw)  # as WebKit prints it, credentials and all
        parts = urlsplit(raw)
        bare = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()
        extra.setdefault("redirect_to", display_url(bare))
    return M.Failure(
        step,
        d.url,
        d.origin,
        initiator=req.initiator,
        preflight=preflight,
        param=param,
        status=resp.status if resp is not None else None,
        redirected_from=d.redirected_from,
        method=d.method,
        host=d.host,
        scheme=d.scheme,
        **extra,
    )


@lru_cache(maxsize=4096)  # verdicts are frozen: the same failure repeats under load
def _verdict(engine: str, f: M.Failure, phase: str, script_message: bool = False) -> CorsVerdict:
    """``message`` is the reason line, or the script's error when nothing is printed (or when
    ``script_message``: network failures and refused requests are reported by the script)."""
    lines, js = M.render(engine, f)
    message = js if script_message or not lines else lines[0]
    return CorsVerdict(
        False,
        f.step,
        message,
        preflight_sent=phase == "preflight",
        phase=phase,
        net_error=f.net_error,
        console=lines,
        js_error=js,
    )


def _fail(
    d: _Derived,
    req: CorsRequest,
    step: str,
    param: str,
    *,
    preflight: bool,
    resp: HttpResponse | None = None,
) -> CorsVerdict:
    extra: dict[str, Any] = {}
    if resp is not None:
        h = resp.cors
        extra["repeated"] = h.acao_repeated
        if step == M.ALLOW_METHODS_INVALID:
            extra.update(value=h.acam or "", token=first_bad_token(h.acam or ""))
        elif step == M.ALLOW_HEADERS_INVALID:
            extra.update(value=h.acah or "", token=first_bad_token(h.acah or ""))
        elif step == M.ALLOW_HEADERS:
            extra["header"] = _script_header(req, param)
    f = _failure(d, req, step, param, preflight=preflight, resp=resp, **extra)
    return _verdict(d.engine, f, "preflight" if preflight else "actual")


def network_verdict(
    req: CorsRequest,
    error: BaseException | str | None = None,
    *,
    phase: str = "actual",
    mode: str = "chrome",
) -> CorsVerdict:
    """No HTTP response (refused, reset, timeout): what the script sees (``message``) and what
    the engine prints (``console``)."""
    d = _derive(req, mode)
    f = _failure(d, req, M.NETWORK, preflight=phase == "preflight", net_error=net_error(error))
    return _verdict(d.engine, f, phase, script_message=True)


def _invalid_request(req: CorsRequest, d: _Derived) -> CorsVerdict:
    if d.invalid == "mode":
        return _verdict(d.engine, _failure(d, req, M.DISALLOWED_BY_MODE), "actual")
    if d.invalid == "scheme":
        return _verdict(d.engine, _failure(d, req, M.DISABLED_SCHEME), "actual")
    f = _failure(d, req, M.REQUEST_INVALID, d.invalid or "")
    return _verdict(d.engine, f, "actual", script_message=True)


_OPAQUE_WARNING = (
    "no-cors request: the response is opaque (the script sees status 0 and no body or headers)",
)
_OPAQUE = CorsVerdict(True, None, None, warnings=_OPAQUE_WARNING)


def evaluate_preflight(
    req: CorsRequest,
    resp: HttpResponse | None,
    mode: str = "chrome",
    *,
    error: BaseException | str | None = None,
) -> CorsVerdict:
    """Verdict on the OPTIONS response (``None`` = the preflight got no response at all)."""
    d = _derive(req, mode)
    if d.invalid is not None:
        return _invalid_request(req, d)
    if d.same_origin:
        return _OK
    if resp is None:
        return network_verdict(req, error, phase="preflight", mode=mode)
    h = resp.cors
    status_ok = 200 <= resp.status <= 299
    if mode == "webkit" and not status_ok:
        # WebKit looks at the status before any header (a redirect is one more non-ok status).
        return _fail(d, req, M.PREFLIGHT_STATUS, "", preflight=True, resp=resp)
    redirect = resp.status in REDIRECT_STATUSES and bool(h.location)
    if mode == "chrome" and redirect:
        # Chromium aborts on the redirect itself (before looking at any header).
        return _fail(d, req, M.PREFLIGHT_REDIRECT, "", preflight=True, resp=resp)
    failed = _check_access(h, d)
    if failed is not None:
        return _fail(d, req, failed[0], failed[1], preflight=True, resp=resp)
    if mode == "firefox" and redirect:  # Firefox checks the redirect's CORS headers first
        return _fail(d, req, M.PREFLIGHT_REDIRECT, "", preflight=True, resp=resp)
    if not status_ok:
        return _fail(d, req, M.PREFLIGHT_STATUS, "", preflight=True, resp=resp)
    methods = parse_allow_list(h.acam, lower=False)
    if methods is None:
        return _fail(d, req, M.ALLOW_METHODS_INVALID, "", preflight=True, resp=resp)
    allowed = parse_allow_list(h.acah, lower=True)
    if allowed is None:
        return _fail(d, req, M.ALLOW_HEADERS_INVALID, "", preflight=True, resp=resp)
    if mode == "spec" and h.acam is None and req.force_preflight:
        methods = frozenset({d.method})
    method = d.method
    if (
        method not in SAFELISTED_METHODS
        and method not in methods
        and (d.include or "*" not in methods)
    ):
        return _fail(d, req, M.ALLOW_METHODS, method, preflight=True, resp=resp)
    wildcard = not d.include and "*" in allowed
    auth_uncovered = d.has_authorization and "authorization" not in allowed
    if mode == "spec":
        # Fetch: `*` never covers Authorization (CORS non-wildcard request-header name).
        if auth_uncovered:
            return _fail(d, req, M.ALLOW_HEADERS, "authorization", preflight=True, resp=resp)
    elif wildcard and auth_uncovered:
        # Chromium and Firefox still let `*` cover Authorization, with a deprecation notice
        # (Chromium a DevTools issue, Firefox a console warning); WebKit says nothing.
        warning = M.authorization_wildcard_warning(d.engine, d.url)
        if warning is None:
            return _OK_PREFLIGHT
        console = (warning,) if d.engine == "firefox" else ()
        return CorsVerdict(
            True, None, None, warnings=(warning,), preflight_sent=True, console=console
        )
    if not wildcard:
        for name in d.unsafe:  # Chromium names one missing header; we name the first sorted
            if name not in allowed:
                return _fail(d, req, M.ALLOW_HEADERS, name, preflight=True, resp=resp)
    return _OK_PREFLIGHT


def evaluate_actual(
    req: CorsRequest,
    resp: HttpResponse | None,
    mode: str = "chrome",
    *,
    error: BaseException | str | None = None,
) -> CorsVerdict:
    """Verdict on the actual response. Any status may pass: only the headers decide."""
    d = _derive(req, mode)
    if d.invalid is not None:
        return _invalid_request(req, d)
    if resp is None:
        return network_verdict(req, error, phase="actual", mode=mode)
    if d.same_origin:
        return _OK
    if req.mode == "no-cors":
        return _OPAQUE
    h = resp.cors
    failed = _check_access(h, d)
    if failed is not None:
        return _fail(d, req, failed[0], failed[1], preflight=False, resp=resp)
    if resp.status in REDIRECT_STATUSES and h.location:
        target = urlsplit(urljoin(req.url, h.location))
        if target.username is not None or target.password is not None:
            # Chromium passes no parameter here: the message really says ''.
            return _fail(d, req, M.REDIRECT_CREDENTIALS, "", preflight=False, resp=resp)
    return _OK


def evaluate(
    req: CorsRequest,
    preflight: HttpResponse | None,
    actual: HttpResponse | None,
    mode: str = "chrome",
    *,
    preflight_skipped: bool = False,
    preflight_error: BaseException | str | None = None,
    actual_error: BaseException | str | None = None,
) -> CorsVerdict:
    """The whole fetch: preflight (when needed and not served from the cache), then the actual
    request. ``preflight=None`` while one is needed means the preflight got no response."""
    d = _derive(req, mode)
    warnings: tuple[str, ...] = ()
    sent = d.needs_preflight and not preflight_skipped
    if sent:
        pv = evaluate_preflight(req, preflight, mode, error=preflight_error)
        if not pv.ok:
            return pv
        warnings = pv.warnings
    av = evaluate_actual(req, actual, mode, error=actual_error)
    if not sent and not warnings:
        return av
    console = pv.console + av.console if sent else av.console
    return replace(av, preflight_sent=sent, warnings=warnings + av.warnings, console=console)


def redirected_request(req: CorsRequest, resp: HttpResponse) -> CorsRequest | None:
    """The request a browser sends after ``resp`` (a redirect), or None if it is not one.
    303 (and 301/302 after POST) turn into GET without a body; a hop to another origin makes
    the Origin ``null`` (redirect-tainted origin)."""
    loc = resp.cors.location
    if resp.status not in REDIRECT_STATUSES or not loc:
        return None
    url = urljoin(req.url, loc)
    method = normalize_method(req.method)
    if resp.status == 303 and method != "HEAD" or resp.status in (301, 302) and method == "POST":
        method = "GET"
    origin = serialize_origin(req.origin)
    if (
        origin != "null"
        and url_origin(url) != url_origin(req.url)
        and url_origin(req.url) != origin
    ):
        origin = "null"
    return replace(
        req, url=url, method=method, origin=origin, redirected_from=req.redirected_from or req.url
    )


def __getattr__(name: str) -> Any:
    # preflight_headers / actual_headers live in probes.cors.wire (which imports this module);
    # resolve them lazily so `from probes.cors.evaluate import preflight_headers` works too.
    if name in ("preflight_headers", "actual_headers", "CHROME_USER_AGENT"):
        from probes.cors import wire

        return getattr(wire, name)
    raise AttributeError(name)
