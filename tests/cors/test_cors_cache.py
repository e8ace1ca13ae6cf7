"""PreflightCache: Chromium's semantics (default) and the Fetch standard's."""

from __future__ import annotations

import pytest

from probes.cors import CorsRequest, HttpResponse, PreflightCache, parse_max_age

URL = "https://api.hakwonplus.com/api/items"
ORIGIN = "https://hakwonplus.com"
ACAO = ("Access-Control-Allow-Origin", ORIGIN)
CRED = ("Access-Control-Allow-Credentials", "true")


def pre(*headers: tuple[str, str]) -> HttpResponse:
    return HttpResponse(200, (ACAO, CRED) + headers)


PUT = CorsRequest(URL, ORIGIN, "PUT")
PUT_OMIT = CorsRequest(URL, ORIGIN, "PUT", credentials="omit")


@pytest.mark.parametrize(
    "value,chrome,spec",
    [
        (None, 5, 5),
        ("600", 600, 600),
        ("86400", 7200, 86400),  # Chromium caps at 2 h
        ("7200", 7200, 7200),
        ("0", 0, 0),
        ("-5", 0, 5),  # Chromium: negative -> 0; spec: not delta-seconds -> default
        ("abc", 5, 5),
        ("5, 10", 5, 5),  # repeated header joined -> unparsable
        ("", 5, 5),
    ],
)
def test_parse_max_age(value, chrome, spec) -> None:
    assert parse_max_age(value, "chrome") == chrome
    assert parse_max_age(value, "spec") == spec


@pytest.mark.parametrize(
    "value,firefox,webkit",
    [
        (None, 5, 5),
        ("", 5, 5),
        ("600", 600, 600),
        ("601", 601, 600),  # WebKit caps at 10 min
        ("7201", 7201, 600),
        ("86400", 86400, 600),
        ("90000", 86400, 600),  # Firefox caps at 24 h
        ("0", 0, 0),
        ("-5", 0, -5),  # Firefox: not digits -> not cached; WebKit: expired at once
        ("+60", 0, 60),
        ("abc", 0, 5),  # Firefox caches nothing it cannot read; WebKit takes its default
        ("5, 10", 0, 5),
    ],
)
def test_parse_max_age_firefox_webkit(value, firefox, webkit) -> None:
    assert parse_max_age(value, "firefox") == firefox
    assert parse_max_age(value, "webkit") == webkit


@pytest.mark.parametrize(("mode", "cap"), [("chrome", 7200), ("firefox", 86400), ("webkit", 600)])
def test_each_engine_caps_max_age_at_its_own_limit(mode, cap) -> None:
    """Chromium 2 h, Firefox 24 h, WebKit 10 min (the engines' sources, docs/cors.md)."""
    resp = pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "31536000"))
    c = PreflightCache(mode)
    c.store(PUT, resp, 0.0)
    assert c.allows(PUT, cap - 1.0) and not c.allows(PUT, cap + 1.0)


def test_default_max_age_is_five_seconds() -> None:
    c = PreflightCache()
    c.store(PUT, pre(("Access-Control-Allow-Methods", "PUT")), now=100.0)
    assert c.allows(PUT, 104.9)
    assert not c.allows(PUT, 105.0)


def test_chrome_caps_at_two_hours_spec_does_not() -> None:
    resp = pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "86400"))
    chrome, spec = PreflightCache(), PreflightCache("spec")
    chrome.store(PUT, resp, 0.0)
    spec.store(PUT, resp, 0.0)
    assert chrome.allows(PUT, 7199.0) and not chrome.allows(PUT, 7200.0)
    assert spec.allows(PUT, 86399.0) and not spec.allows(PUT, 86400.0)


def test_negative_max_age_not_cached_in_chrome() -> None:
    resp = pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "-5"))
    chrome, spec = PreflightCache(), PreflightCache("spec")
    chrome.store(PUT, resp, 0.0)
    spec.store(PUT, resp, 0.0)
    assert not chrome.allows(PUT, 0.0)
    assert spec.allows(PUT, 4.0)


@pytest.mark.parametrize("mode", ["chrome", "spec"])
def test_uncredentialed_entry_does_not_serve_credentialed_request(mode) -> None:
    c = PreflightCache(mode)
    c.store(
        PUT_OMIT,
        pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "60")),
        0.0,
    )
    assert c.allows(PUT_OMIT, 1.0)
    assert not c.allows(PUT, 1.0)
    c2 = PreflightCache(mode)
    c2.store(
        PUT, pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "60")), 0.0
    )
    assert c2.allows(PUT_OMIT, 1.0)  # a credentialed entry serves both


@pytest.mark.parametrize("mode", ["chrome", "spec"])
def test_wildcards_only_without_credentials(mode) -> None:
    resp = pre(
        ("Access-Control-Allow-Methods", "*"),
        ("Access-Control-Allow-Headers", "*"),
        ("Access-Control-Max-Age", "60"),
    )
    omit = PreflightCache(mode)
    omit.store(PUT_OMIT, resp, 0.0)
    assert omit.allows(
        CorsRequest(URL, ORIGIN, "DELETE", (("X-Any", "1"),), credentials="omit"), 1.0
    )
    incl = PreflightCache(mode)
    incl.store(PUT, resp, 0.0)  # `*` is a literal name for a credentialed entry
    assert not incl.allows(CorsRequest(URL, ORIGIN, "DELETE"), 1.0)


def test_authorization_and_wildcard_chrome_vs_spec() -> None:
    resp = pre(("Access-Control-Allow-Headers", "*"), ("Access-Control-Max-Age", "60"))
    auth = CorsRequest(URL, ORIGIN, "GET", (("Authorization", "t"),), credentials="omit")
    chrome, spec = PreflightCache(), PreflightCache("spec")
    chrome.store(auth, resp, 0.0)
    spec.store(auth, resp, 0.0)
    assert chrome.allows(auth, 1.0)
    assert not spec.allows(auth, 1.0)


def test_new_header_needs_a_new_preflight() -> None:
    c = PreflightCache()
    c.store(
        PUT, pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "60")), 0.0
    )
    assert not c.allows(CorsRequest(URL, ORIGIN, "PUT", (("X-Client", "a"),)), 1.0)
    assert c.allows(CorsRequest(URL, ORIGIN, "PUT", (("Accept", "application/json"),)), 1.0)


def test_chrome_replaces_spec_accumulates() -> None:
    put = pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "60"))
    delete = pre(("Access-Control-Allow-Methods", "DELETE"), ("Access-Control-Max-Age", "60"))
    dreq = CorsRequest(URL, ORIGIN, "DELETE")
    chrome, spec = PreflightCache(), PreflightCache("spec")
    for c in (chrome, spec):
        c.store(PUT, put, 0.0)
        c.store(dreq, delete, 1.0)
        assert c.allows(dreq, 2.0)
    assert not chrome.allows(PUT, 2.0)
    assert spec.allows(PUT, 2.0)


def test_keyed_by_origin_and_url() -> None:
    c = PreflightCache()
    c.store(
        PUT, pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "60")), 0.0
    )
    assert not c.allows(CorsRequest(URL + "/1", ORIGIN, "PUT"), 1.0)
    assert not c.allows(CorsRequest(URL, "https://admin.hakwonplus.com", "PUT"), 1.0)
    assert c.allows(CorsRequest(URL + "#frag", ORIGIN, "PUT"), 1.0)


def test_bounded_and_clearable() -> None:
    c = PreflightCache(max_entries=2)
    resp = pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "60"))
    reqs = [CorsRequest(f"{URL}/{i}", ORIGIN, "PUT") for i in range(3)]
    for r in reqs:
        c.store(r, resp, 0.0)
    assert len(c) == 2
    assert not c.allows(reqs[0], 1.0) and c.allows(reqs[2], 1.0)
    c.clear(reqs[2])
    assert not c.allows(reqs[2], 1.0)


def test_unparsable_allow_list_is_not_cached() -> None:
    c = PreflightCache()
    c.store(PUT, pre(("Access-Control-Allow-Methods", "P(T")), 0.0)
    assert len(c) == 0


@pytest.mark.parametrize("mode", ["chrome", "spec"])
@pytest.mark.parametrize(
    "cache_mode,looked_up,stored",
    [
        ("default", True, True),
        ("force-cache", True, True),
        ("no-cache", False, True),  # Chromium's LOAD_VALIDATE_CACHE skips the lookup
        ("reload", False, True),  # LOAD_BYPASS_CACHE
        ("no-store", False, False),  # LOAD_DISABLE_CACHE: neither looked up nor stored
    ],
)
def test_fetch_cache_mode_bypasses_the_preflight_cache(mode, cache_mode, looked_up, stored):
    """Checked against real Chromium in test_cors_browser.py (preflight-cache-*-then-*)."""
    req = CorsRequest(URL, ORIGIN, "PUT", cache=cache_mode)
    allow = pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "600"))
    c = PreflightCache(mode)
    c.store(PUT, allow, now=0)
    assert c.allows(req, now=1) is looked_up
    c2 = PreflightCache(mode)
    c2.store(req, allow, now=0)
    assert c2.allows(PUT, now=1) is stored


def test_unknown_cache_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="cache must be one of"):
        CorsRequest(URL, ORIGIN, "PUT", cache="bypass")
