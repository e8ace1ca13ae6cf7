"""The headers each engine puts on the wire for a CORS request: the OPTIONS preflight and the
actual request (what `albprobe cors --browser ...` and the Locust user send, so the server sees
that browser), with the engine's own User-Agent, header set and order.

Recorded from the real engines the test suite drives (tests/cors/cors_engine_run.py compares
every preflight and first request of the shared cases with these lists): Chromium 156, Firefox
153.8.0esr and WebKitGTK 2.50.6. Transport headers (Host, Connection, Accept-Encoding,
Content-Length) are left to the HTTP client. Never a Cookie on a preflight; Authorization only
as a script-set header. ``spec`` mode sends Chromium's.

Not recorded (the test page has no cookie, and albprobe sends neither): where Firefox and WebKit
put the Cookie header (placed where their request builders add it, see the ``cookie`` slots),
redirect hops (sent as first requests) and fetch cache modes other than ``default``.
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
FIREFOX_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"
WEBKIT_USER_AGENT = (  # WebKitGTK's own (Safari on a Mac says Macintosh and its version)
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/60.5 Safari/605.1.15"
)
USER_AGENTS = {
    "chrome": CHROME_USER_AGENT,
    "firefox": FIREFOX_USER_AGENT,
    "webkit": WEBKIT_USER_AGENT,
}
# Firefox's default; WebKit's comes from the user's languages (WebKitGTK: the locale), so
# Safari's usual English value is sent.
ACCEPT_LANGUAGE = {
    "chrome": "en-US,en;q=0.9",
    "firefox": "en-US,en;q=0.9",
    "webkit": "en-US,en;q=0.9",
}
# Chromium's low-entropy UA client hints, sent on every request to a secure (or loopback) URL.
CHROME_CLIENT_HINTS = {
    "sec-ch-ua-platform": ("sec-ch-ua-platform", '"Linux"'),
    "sec-ch-ua": ("sec-ch-ua", '"Not:A-Brand";v="8", "Chromium";v="156"'),
    "sec-ch-ua-mobile": ("sec-ch-ua-mobile", "?0"),
}
# The order Blink's header map gave these names on the wire (recorded from Chromium 156, the
# shared cases of tests/cors). It is a hash map's order: a name not recorded here is sent after
# the recorded ones, in the script's order - a guess, said in docs/cors.md.
_BLINK_MAP_RANK = {
    name: i
    for i, name in enumerate(
        [
            "viewport-width",
            "dpr",
            "sec-ch-ua-platform",
            "authorization",
            "save-data",
            "user-agent",
            "sec-ch-ua",
            "content-type",
            "sec-ch-ua-mobile",
            "x-client",
        ]
    )
}


def _slots(order: str) -> tuple[str, ...]:
    return tuple(order.split())


# Header order per engine, as slots (see _fill). "script": the script's headers in its order;
# WebKit splits them into names of its well-known header table (sent first) and the others
# (sent last).
PREFLIGHT_ORDER = {
    "chrome": _slots("accept acrm acrh origin ua mode site dest referer al"),
    "firefox": _slots("ua accept al acrm acrh referer origin sfsa dest mode site priority"),
    "webkit": _slots("origin acrm referer acrh ua accept al mode dest site"),
}
# Chromium: Blink hands the network service the script's headers, the User-Agent and the UA
# client hints in one hash map, in that map's order ("blink-map"); the network service then
# adds Accept, Origin, Sec-Fetch-*, Referer, Accept-Language and the Cookie; Range goes last.
_CHROME_ACTUAL = _slots("blink-map accept origin site mode dest sfsa referer al cookie range")
ACTUAL_ORDER = {  # (engine, initiator)
    ("chrome", "fetch"): _CHROME_ACTUAL,
    ("chrome", "xhr"): _CHROME_ACTUAL,
    ("firefox", "fetch"): _slots(
        "ua accept al referer script origin sfsa cookie dest mode site priority"
    ),
    ("firefox", "xhr"): _slots("ua accept al script origin sfsa cookie referer dest mode site"),
    ("webkit", "fetch"): _slots(
        "script-known origin referer accept ua al cookie dest mode site script-other"
    ),
    ("webkit", "xhr"): _slots(
        "script-known origin accept referer ua al cookie dest mode site script-other"
    ),
}
# Firefox sets its default User-Agent, Accept and Accept-Language when the channel is made; a
# script's value replaces them there (nsHttpHeaderArray::SetHeader), not among the other script
# headers. WebKit puts a script's User-Agent in its own's place, on the preflight too (observed).
_IN_PLACE = {
    "firefox": frozenset({"user-agent", "accept", "accept-language"}),
    "webkit": frozenset({"user-agent"}),
}
_PREFLIGHT_IN_PLACE = {"webkit": frozenset({"user-agent"})}
# Request-side names in WebKit's well-known header table (HTTPHeaderNames.in): its header map
# keeps those apart from (and before) other names.
_WEBKIT_KNOWN = frozenset(
    _slots(
        "accept accept-charset accept-language authorization cache-control content-language"
        " content-type dnt if-match if-modified-since if-none-match if-range if-unmodified-since"
        " last-event-id pragma purpose range"
    )
)


def wire_engine(mode: str) -> str:
    """Whose request is sent: ``spec`` sends Chromium's."""
    return mode if mode in USER_AGENTS else "chrome"


def default_user_agent(mode: str) -> str:
    return USER_AGENTS[wire_engine(mode)]


def _referer(origin: str, url: str) -> str | None:
    """strict-origin-when-cross-origin from a page at the origin's root: the origin + '/',
    nothing on an https -> http downgrade or from an opaque origin."""
    if origin == "null":
        return None
    if origin.startswith("https:") and urlsplit(url).scheme == "http":
        return None
    return origin + "/"


def _fill(
    order: tuple[str, ...], req: CorsRequest, mode: str, user_agent: str, *, preflight: bool
) -> tuple[tuple[tuple[str, str], ...], int]:
    """The headers in ``order``; and where a Cookie goes (its slot's index in the list)."""
    engine = wire_engine(mode)
    d = _derive(req, mode)
    script: list[tuple[str, str]] = []
    for name, value in req.headers:
        v = value.strip(" \t\r\n")
        if not is_forbidden_header(name.lower(), v, mode):  # dropped silently
            script.append((name, v))
    given = {name.lower(): (name, v) for name, v in script}
    in_place = (_PREFLIGHT_IN_PLACE if preflight else _IN_PLACE).get(engine, frozenset())
    if preflight:  # the script's headers are not sent (only named in the ACRH list)
        script = []
        given = {k: v for k, v in given.items() if k in in_place}
    site = sec_fetch_site(d.origin, req.url)
    referer = _referer(d.origin, req.url)
    out: list[tuple[str, str]] = []
    cookie_at = -1

    def default(name: str, value: str) -> None:
        """A header the engine adds unless the script set it (or, in place, the script's)."""
        if name.lower() in in_place:
            out.append(given.get(name.lower(), (name, value)))
        elif name.lower() not in given:
            out.append((name, value))

    for slot in order:
        if slot == "blink-map":
            out += _blink_map(script, user_agent, given, req.url)
        elif slot == "range":
            out += [(n, v) for n, v in script if n.lower() == "range"]
        elif slot == "accept":
            default("Accept", "*/*")
        elif slot == "al":
            default("Accept-Language", ACCEPT_LANGUAGE[engine])
        elif slot == "script":
            out += [(n, v) for n, v in script if n.lower() not in in_place]
        elif slot in ("script-known", "script-other"):
            known = slot == "script-known"
            out += [(n, v) for n, v in script if (n.lower() in _WEBKIT_KNOWN) == known]
        elif slot == "acrm":
            out.append(("Access-Control-Request-Method", d.method))
        elif slot == "acrh" and d.unsafe:
            out.append(("Access-Control-Request-Headers", ",".join(d.unsafe)))
        elif slot == "origin" and (
            preflight or not (d.same_origin and d.method in ("GET", "HEAD"))
        ):
            out.append(("Origin", serialize_origin(req.origin)))
        elif slot == "ua" and (user_agent or "user-agent" in given):
            default("User-Agent", user_agent)
        elif slot == "referer" and referer:
            out.append(("Referer", referer))
        elif slot == "sfsa" and d.include and site == "cross-site":
            # Firefox and Chromium: a credentialed cross-site request without storage access.
            out.append(("Sec-Fetch-Storage-Access", "none"))
        elif slot == "dest":
            out.append(("Sec-Fetch-Dest", "empty"))
        elif slot == "mode":
            out.append(("Sec-Fetch-Mode", "cors"))
        elif slot == "site":
            out.append(("Sec-Fetch-Site", site))
        elif slot == "priority":
            out.append(("Priority", "u=4"))
        elif slot == "cookie":
            cookie_at = len(out)
    return tuple(out), cookie_at


def _secure_url(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" or host in ("localhost", "::1") or host.startswith("127.")


def _blink_map(
    script: list[tuple[str, str]],
    user_agent: str,
    given: dict[str, tuple[str, str]],
    url: str,
) -> list[tuple[str, str]]:
    """Chromium's first group: the script's headers (Range aside), the User-Agent and, to a
    secure URL, the UA client hints, in Blink's header-map order."""
    group = [(n, v) for n, v in script if n.lower() not in ("range", "user-agent")]
    if user_agent or "user-agent" in given:
        group.append(given.get("user-agent", ("User-Agent", user_agent)))
    if _secure_url(url):
        group += [v for k, v in CHROME_CLIENT_HINTS.items() if k not in given]
    unknown = len(_BLINK_MAP_RANK)
    return sorted(group, key=lambda h: _BLINK_MAP_RANK.get(h[0].lower(), unknown))


@lru_cache(maxsize=4096)
def _preflight(req: CorsRequest, mode: str, user_agent: str) -> tuple[tuple[str, str], ...]:
    return _fill(PREFLIGHT_ORDER[wire_engine(mode)], req, mode, user_agent, preflight=True)[0]


def preflight_headers(
    req: CorsRequest, mode: str = "chrome", *, user_agent: str | None = None
) -> list[tuple[str, str]]:
    """The OPTIONS request's headers, in the engine's order (``user_agent`` None: the engine's
    own; "": none). No Cookie, no Authorization."""
    ua = default_user_agent(mode) if user_agent is None else user_agent
    return list(_preflight(req, mode, ua))


@lru_cache(maxsize=4096)
def _actual(
    req: CorsRequest, mode: str, user_agent: str
) -> tuple[tuple[tuple[str, str], ...], int]:
    order = ACTUAL_ORDER[(wire_engine(mode), req.initiator)]
    return _fill(order, req, mode, user_agent, preflight=False)


def actual_headers(
    req: CorsRequest,
    mode: str = "chrome",
    *,
    user_agent: str | None = None,
    cookie: str | None = None,
) -> list[tuple[str, str]]:
    """The actual request's headers, in the engine's order: the script's (minus forbidden ones),
    Accept, Origin, User-Agent (``user_agent`` None: the engine's own), Sec-Fetch-*, Referer,
    the engine's extras, and Cookie only when credentials mode is "include"."""
    ua = default_user_agent(mode) if user_agent is None else user_agent
    headers, cookie_at = _actual(req, mode, ua)
    out = list(headers)
    if cookie and req.credentials == "include":
        out.insert(cookie_at, ("Cookie", cookie))
    return out
