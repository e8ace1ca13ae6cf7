"""The Firefox and WebKit modes without a browser: the rules the real-engine tests
(test_cors_firefox.py, test_cors_webkit.py) found, as small pure checks."""

from __future__ import annotations

import pytest

from probes.cors import CorsRequest, HttpResponse, PreflightCache, evaluate

URL = "https://api.hakwonplus.com/api/items"
ORIGIN = "https://hakwonplus.com"
ALB_502 = HttpResponse(502, (("Server", "awselb/2.0"), ("Content-Type", "text/html")), b"x")
PUT = CorsRequest(URL, ORIGIN, "PUT")
CORS_OK = (("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true"))


def test_alb_502_on_the_preflight_in_each_engine() -> None:
    chrome, firefox, webkit = (
        evaluate(PUT, ALB_502, None, m) for m in ("chrome", "firefox", "webkit")
    )
    assert chrome.step == firefox.step == "allow-origin-missing"
    assert webkit.step == "preflight-status"  # WebKit reads the status first
    assert "Status code" not in chrome.message
    assert firefox.console == (
        "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote"
        f" resource at {URL}. (Reason: CORS header ‘Access-Control-Allow-Origin’ missing)."
        " Status code: 502.",
        "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote"
        f" resource at {URL}. (Reason: CORS request did not succeed). Status code: (null).",
    )
    assert webkit.console == (
        "Preflight response is not successful. Status code: 502",
        f"Fetch API cannot load {URL} due to access control checks.",
    )
    assert (chrome.js_error, firefox.js_error, webkit.js_error) == (
        "TypeError: Failed to fetch",
        "TypeError: NetworkError when attempting to fetch resource.",
        "TypeError: Load failed",
    )


def test_firefox_tells_repeated_allow_origin_lines_from_a_list() -> None:
    get = CorsRequest(URL, ORIGIN)
    lines = HttpResponse(200, (("Access-Control-Allow-Origin", ORIGIN),) * 2)
    listed = HttpResponse(200, (("Access-Control-Allow-Origin", f"https://a.example, {ORIGIN}"),))
    assert "Multiple CORS header" in evaluate(get, None, lines, "firefox").message
    assert "does not match ‘https://a.example, " in evaluate(get, None, listed, "firefox").message
    for resp in (lines, listed):
        assert evaluate(get, None, resp, "webkit").message == (
            "Access-Control-Allow-Origin cannot contain more than one origin."
        )


def test_authorization_under_wildcard_headers() -> None:
    req = CorsRequest(URL, ORIGIN, "GET", (("Authorization", "Bearer t"),), credentials="omit")
    pre = HttpResponse(
        200, (("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Headers", "*"))
    )
    act = HttpResponse(200, (("Access-Control-Allow-Origin", ORIGIN),))
    ff, wk, spec = (evaluate(req, pre, act, m) for m in ("firefox", "webkit", "spec"))
    assert ff.ok and ff.console[0].startswith("Cross-Origin Request Warning:")
    assert wk.ok and wk.warnings == () and wk.console == ()
    assert not spec.ok and spec.step == "allow-headers"


def test_webkit_names_the_header_as_the_script_wrote_it() -> None:
    req = CorsRequest(URL, ORIGIN, "POST", (("X-Client", "web"),))
    pre = HttpResponse(200, CORS_OK)
    v = evaluate(req, pre, None, "webkit")
    assert (
        v.message == "Request header field X-Client is not allowed by Access-Control-Allow-Headers."
    )


@pytest.mark.parametrize(
    "mode,cache,skips",
    [
        ("chrome", "no-store", False),
        ("chrome", "no-cache", False),
        ("firefox", "no-cache", True),
        ("firefox", "reload", False),
        ("webkit", "no-store", True),
        ("webkit", "reload", True),
    ],
)
def test_preflight_cache_and_fetch_cache_modes(mode: str, cache: str, skips: bool) -> None:
    pc = PreflightCache(mode)
    pre = HttpResponse(
        200, CORS_OK + (("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "600"))
    )
    pc.store(PUT, pre, 0.0)
    assert pc.allows(CorsRequest(URL, ORIGIN, "PUT", cache=cache), 1.0) is skips
