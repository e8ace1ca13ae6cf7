"""The request side of CORS: which author headers a browser keeps, which make a request
"non-simple", and the headers Chromium puts on the OPTIONS preflight.

Rules: WHATWG Fetch (#cors-safelisted-request-header, #forbidden-request-header,
#cors-unsafe-request-header-names) and, in ``chrome`` mode, the differences observed in
Chromium 156 (docs/cors.md lists them): `User-Agent` set by a script is dropped (forbidden), and
Chromium's extra safelisted client-hint headers (`Save-Data: on`, `DPR`, `Width`, ...).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
# Fetch "normalize a method": only these are upper-cased; `patch` stays `patch`.
_NORMALIZED_METHODS = {m.lower(): m for m in ("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT")}
FORBIDDEN_METHODS = frozenset({"connect", "trace", "track"})

_FORBIDDEN_NAMES = frozenset(
    {
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
    }
)
# Chromium still silently drops a script-set User-Agent (observed in 156: no preflight).
_FORBIDDEN_NAMES_CHROME = _FORBIDDEN_NAMES | {"user-agent"}
_METHOD_OVERRIDE_NAMES = frozenset({"x-http-method", "x-http-method-override", "x-method-override"})

# CORS-unsafe request-header byte: < 0x20 except HT, or one of "():<>?@[\]{} and DEL.
_UNSAFE_BYTE = re.compile(r'[\x00-\x08\x0a-\x1f"():<>?@\[\\\]{}\x7f]')
_LANGUAGE_VALUE = re.compile(r"^[0-9A-Za-z *,\-.;=]*$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_RANGE = re.compile(r"^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)$")
_DOUBLE = re.compile(r"^\d+(?:\.\d+)?$")
_INT = re.compile(r"^\d+$")
_HTTP_WS = " \t\r\n"
_SAFELISTED_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)


def normalize_method(method: str) -> str:
    """Fetch's method normalization: DELETE/GET/HEAD/OPTIONS/POST/PUT upper-cased, others kept."""
    return _NORMALIZED_METHODS.get(method.lower(), method)


def is_forbidden_method(method: str) -> bool:
    return method.lower() in FORBIDDEN_METHODS


def is_forbidden_header(name: str, value: str, mode: str = "chrome") -> bool:
    """A name a script cannot set (the browser drops it silently); ``name`` lower-cased."""
    names = _FORBIDDEN_NAMES_CHROME if mode == "chrome" else _FORBIDDEN_NAMES
    if name in names or name.startswith(("proxy-", "sec-")):
        return True
    if name in _METHOD_OVERRIDE_NAMES:
        return any(part.strip(_HTTP_WS).lower() in FORBIDDEN_METHODS for part in value.split(","))
    return False


def mime_essence(value: str) -> str | None:
    """Fetch's strict "parse a MIME type", returning only the lower-cased essence."""
    value = value.strip(_HTTP_WS)
    slash = value.find("/")
    if slash <= 0:
        return None
    mtype = value[:slash]
    rest = value[slash + 1 :]
    semi = rest.find(";")
    subtype = (rest if semi < 0 else rest[:semi]).rstrip(_HTTP_WS)
    if not _TOKEN.match(mtype) or not subtype or not _TOKEN.match(subtype):
        return None
    return f"{mtype}/{subtype}".lower()


def _range_ok(value: str) -> bool:
    m = _RANGE.match(value)
    if not m or not m.group(1):  # suffix ranges (bytes=-500) are not safelisted
        return False
    return not m.group(2) or int(m.group(1)) <= int(m.group(2))


def is_safelisted_header(name: str, value: str, mode: str = "chrome") -> bool:
    """CORS-safelisted request-header (``name`` lower-cased, ``value`` normalized)."""
    if len(value.encode("latin-1", "replace")) > 128:
        return False
    if name == "accept":
        return not _UNSAFE_BYTE.search(value)
    if name in ("accept-language", "content-language"):
        return bool(_LANGUAGE_VALUE.match(value))
    if name == "content-type":
        if _UNSAFE_BYTE.search(value):
            return False
        return mime_essence(value) in _SAFELISTED_CONTENT_TYPES
    if name == "range":
        return _range_ok(value)
    if mode == "chrome":
        # Chromium-only safelisted client hints (cors.cc IsCorsSafelistedHeader).
        if name in ("device-memory", "dpr"):
            return bool(_DOUBLE.match(value))
        if name in ("width", "viewport-width"):
            return bool(_INT.match(value))
        if name == "save-data":
            return value.lower() == "on"
        if name == "intervention":
            return True
    return False


TEXT_PLAIN_UTF8 = "text/plain;charset=UTF-8"


def with_body_headers(
    headers: tuple[tuple[str, str], ...], body: str | None
) -> tuple[tuple[str, str], ...]:
    """The headers fetch() sends with ``body``: a string body without a Content-Type gets
    ``text/plain;charset=UTF-8`` (Fetch, "extract a body"), which is still CORS-safelisted."""
    if body is None or any(n.lower() == "content-type" for n, _ in headers):
        return headers
    return (*headers, ("Content-Type", TEXT_PLAIN_UTF8))


def author_headers(
    headers: tuple[tuple[str, str], ...], mode: str = "chrome"
) -> tuple[tuple[str, str], ...]:
    """What a fetch() Headers object keeps: lower-cased names, whitespace-trimmed values,
    repeated names combined with ", ", forbidden names dropped; first-seen order."""
    combined: dict[str, str] = {}
    for name, value in headers:
        lname = name.lower()
        v = value.strip(_HTTP_WS)
        combined[lname] = f"{combined[lname]}, {v}" if lname in combined else v
    return tuple((n, v) for n, v in combined.items() if not is_forbidden_header(n, v, mode))


def unsafe_header_names(
    headers: tuple[tuple[str, str], ...], mode: str = "chrome"
) -> tuple[str, ...]:
    """CORS-unsafe request-header names: sorted, lower-cased, de-duplicated (Fetch)."""
    unsafe: set[str] = set()
    safe: list[str] = []
    safe_total = 0
    for name, value in author_headers(headers, mode):
        if is_safelisted_header(name, value, mode):
            safe.append(name)
            safe_total += len(value)
        else:
            unsafe.add(name)
    if safe_total > 1024:  # the values of safelisted headers sum to more than 1 KiB
        unsafe.update(safe)
    return tuple(sorted(unsafe))


def serialize_origin(origin: str) -> str:
    """ASCII serialization: scheme://host[:port], default port dropped, no trailing slash."""
    if origin == "null":
        return origin
    parts = urlsplit(origin)
    if not parts.scheme or not parts.hostname:
        return origin.rstrip("/")
    return _origin_of(parts)


def _origin_of(parts) -> str:  # type: ignore[no-untyped-def]
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
    return f"{scheme}://{host}" if port is None or port == default else f"{scheme}://{host}:{port}"


def url_origin(url: str) -> str:
    return _origin_of(urlsplit(url))


def display_url(url: str) -> str:
    """The URL as Chromium prints it in a CORS message (GURL canonical form, roughly):
    scheme and host lower-cased, default port dropped, empty path -> '/', query and fragment
    kept."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    out = _origin_of(parts) + (parts.path or "/")
    before_fragment = url.split("#", 1)[0]
    if "?" in before_fragment:
        out += "?" + parts.query
    if "#" in url:
        out += "#" + parts.fragment
    return out


def _site(origin: str) -> tuple[str, str]:
    """(scheme, registrable-domain approximation): last two labels of a DNS name, or the
    whole host for an IP literal / single label. Good enough for Sec-Fetch-Site."""
    parts = urlsplit(origin)
    host = (parts.hostname or "").lower()
    if re.fullmatch(r"[\d.]+", host) or ":" in host or "." not in host:
        return parts.scheme, host
    return parts.scheme, ".".join(host.split(".")[-2:])


def sec_fetch_site(origin: str, url: str) -> str:
    target = url_origin(url)
    if serialize_origin(origin) == target:
        return "same-origin"
    return "same-site" if _site(origin) == _site(target) else "cross-site"
