"""The testbed's replay support: every path answered (with CORS, through the proxy), and the
sleep header makes a request last its log line's target time."""

from __future__ import annotations

import time

import httpx

from core.replay import SLEEP_HEADER

ORIGIN = "https://hakwonplus.com"


def test_any_path_and_method_is_answered_with_cors_and_the_sleep_header_sets_its_time(make_testbed):
    tb = make_testbed()
    h = {"Origin": ORIGIN}
    r = httpx.get(tb.url + "/v2/students/17/grades?term=3", headers=h, timeout=15)
    assert r.status_code == 200 and r.json()["replayed"] == "/v2/students/17/grades"
    assert r.headers["access-control-allow-origin"] == ORIGIN
    pre = httpx.options(
        tb.url + "/v2/students/17",
        headers={**h, "Access-Control-Request-Method": "PATCH"},
        timeout=15,
    )
    assert pre.status_code == 200 and "PATCH" in pre.headers["access-control-allow-methods"]
    assert httpx.delete(tb.url + "/v2/x", headers=h, timeout=15).status_code == 204
    assert (
        httpx.get(tb.url + "/api/fast", headers=h, timeout=15).json()["ok"] is True
    )  # routes kept

    t0 = time.monotonic()
    slow = httpx.get(tb.url + "/api/fast", headers={**h, SLEEP_HEADER: "400"}, timeout=15)
    took = time.monotonic() - t0
    assert slow.status_code == 200 and took >= 0.4
    bad = httpx.get(tb.url + "/x", headers={**h, SLEEP_HEADER: "soon"}, timeout=15)
    assert bad.status_code == 200
