"""The headers Chromium puts on the wire for a CORS request: the OPTIONS preflight and the
actual request (what `albprobe cors` and the Locust user send, so the server sees a browser).

Observed from Chromium 156 (tests/cors/test_cors_browser.py records what it sends): the
preflight carries Accept: */*, Access-Control-Request-Method, Access-Control-Request-Headers
(only when non-empty), Origin, User-Agent, Sec-Fetch-Mode/Site/Dest and Referer; never cookies.
Transport headers (Host, Connection, Accept-Encoding) are left to the HTTP client.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from probes.cors.evaluate import CorsRequest, _derive
from probes.cors.requestside import (
    is_forbidden_header,
    sec_fetch_site,
    serialize_origin,
)

CHROME_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


def _referer(origin: str, url: str) -> str | None:
    """strict-origin-when-cross-origin from a page at the origin's root: the origin + '/',
    nothing on an https -> http downgrade or from an opaque origin."""
    if origin == "null":
        return None
    if origin.startswith("https:") and urlsplit(url).scheme == "http":
        return None
    return origin + "/"


@lru_cache(maxsize=4096)
def _preflight(req: CorsRequest, mode: str, user_agent: str) -> tuple[tuple[str, str], ...]:
    d = _derive(req, mode)
    out = [("Accept", "*/*"), ("Access-Control-Request-Method", d.method)]
    if d.unsafe:
        out.append(("Access-Control-Request-Headers", ",".join(d.unsafe)))
    out.append(("Origin", d.origin))
    if user_agent:
        out.append(("User-Agent", user_agent))
    out += [
        ("Sec-Fetch-Mode", "cors"),
        ("Sec-Fetch-Site", sec_fetch_site(d.origin, req.url)),
        ("Sec-Fetch-Dest", "empty"),
    ]
    ref = _referer(d.origin, req.url)
    if ref:
        out.append(("Referer", ref))
    return tuple(out)


def preflight_headers(
    req: CorsRequest, mode: str = "chrome", *, user_agent: str = CHROME_USER_AGENT
) -> list[tuple[str, str]]:
    """The OPTIONS request's headers, in Chromium's order. No Cookie, no Authorization."""
    return list(_preflight(req, mode, user_agent))


@lru_cache(maxsize=4096)
def _actual(req: CorsRequest, mode: str, user_agent: str) -> tuple[tuple[str, str], ...]:
    d = _derive(req, mode)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in req.headers:
        lname = name.lower()
        v = value.strip(" \t\r\n")
        if is_forbidden_header(lname, v, mode):
            continue  # the browser drops it silently
        seen.add(lname)
        out.append((name, v))
    if "accept" not in seen:
        out.insert(0, ("Accept", "*/*"))
    if d.same_origin and d.method in ("GET", "HEAD"):
        pass  # no Origin on same-origin GET/HEAD
    else:
        out.append(("Origin", serialize_origin(req.origin)))
    if user_agent:
        out.append(("User-Agent", user_agent))
    out += [
        ("Sec-Fetch-Site", sec_fetch_site(d.origin, req.url)),
        ("Sec-Fetch-Mode", "cors"),
        ("Sec-Fetch-Dest", "empty"),
    ]
    ref = _referer(d.origin, req.url)
    if ref:
        out.append(("Referer", ref))
    return tuple(out)


def actual_headers(
    req: CorsRequest,
    mode: str = "chrome",
    *,
    user_agent: str = CHROME_USER_AGENT,
    cookie: str | None = None,
) -> list[tuple[str, str]]:
    """The actual request's headers: the script's (minus forbidden ones), Accept, Origin,
    User-Agent, Sec-Fetch-*, Referer, and Cookie only when credentials mode is "include"."""
    out = list(_actual(req, mode, user_agent))
    if cookie and req.credentials == "include":
        out.append(("Cookie", cookie))
    return out
