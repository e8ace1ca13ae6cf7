"""Each fault switch of the testbed produces its symptom through the real proxy."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import httpx
import pytest

from testbed.haproxy import ERRORPAGES

ORIGIN = "https://hakwonplus.com"
ALB_502_BODY = (ERRORPAGES / "alb-502.http").read_bytes().split(b"\r\n\r\n", 1)[1]
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials")


def preflight(base: str, origin: str = ORIGIN) -> httpx.Response:
    return httpx.options(
        base + "/api/items",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-client",
        },
        timeout=15,
    )


def get(base: str, path: str = "/api/fast", timeout: float = 15) -> httpx.Response:
    return httpx.get(base + path, headers={"Origin": ORIGIN}, timeout=timeout)


def assert_no_cors(r: httpx.Response) -> None:
    for h in CORS_HEADERS:
        assert h not in r.headers, f"{h} present on a {r.status_code}"


def test_preflight_from_the_front_origin_is_allowed_through_the_proxy(make_testbed):
    tb = make_testbed()
    r = preflight(tb.url)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "x-client" in r.headers["access-control-allow-headers"]
    assert "POST" in r.headers["access-control-allow-methods"]
    actual = httpx.post(
        tb.url + "/api/items",
        json={"t": 1},
        headers={"Origin": ORIGIN, "X-Client": "albprobe"},
        timeout=10,
    )
    assert actual.status_code == 201 and actual.headers["access-control-allow-origin"] == ORIGIN


def test_disallowed_origin_gets_no_allow_origin(make_testbed):
    tb = make_testbed()
    r = preflight(tb.url, origin="https://evil.example")
    assert "access-control-allow-origin" not in r.headers
    g = httpx.get(tb.url + "/api/fast", headers={"Origin": "https://evil.example"}, timeout=10)
    assert g.status_code == 200 and "access-control-allow-origin" not in g.headers


def test_target_down_gives_alb_502_without_cors_then_down_in_stats(make_testbed):
    tb = make_testbed()
    tb.wait_for_health("UP")
    tb.set_fault("target-down", True)
    r = get(tb.url)
    assert r.status_code == 502
    raw = dict(r.headers.raw)
    assert raw[b"Server"] == b"awselb/2.0"  # the ALB's header, with its case
    assert r.content == ALB_502_BODY and r.headers["content-length"] == "122"
    assert_no_cors(r)
    assert preflight(tb.url).status_code == 502
    # refused: HAProxy reports either. A check in flight when the target died can take it DOWN
    # first as L7RSP (connected, then closed with no answer; seen on a busy machine); the next
    # check finds the port closed.
    st = tb.wait_for_health("DOWN", check_status=("L4CON", "SOCKERR"))
    assert st.check_status in ("L4CON", "SOCKERR")
    # Fail-open: still routed to the (dead) target, so 502, never HAProxy's 503 <NOSRV>.
    assert get(tb.url).status_code == 502
    tb.set_fault("target-down", False)
    tb.wait_for_health("UP")
    assert get(tb.url).status_code == 200
    kinds = [e["kind"] for e in tb.events]
    assert "target_killed" in kinds and kinds.count("target_started") == 2


def test_hang_gets_gunicorns_own_500_without_cors(make_testbed):
    tb = make_testbed(timeout=2, faults={"hang"})
    r = get(tb.url, timeout=30)
    assert r.status_code == 500
    assert r.headers.get("server", "").lower() != "awselb/2.0"
    assert_no_cors(r)
    assert "WORKER TIMEOUT" in tb.gunicorn_log.read_text()
    tb.set_fault("hang", False)
    assert get(tb.url).status_code == 200


def test_hang_past_the_proxy_idle_timeout_gives_alb_504(make_testbed):
    tb = make_testbed(timeout=30, idle_timeout=1.0, faults={"hang"}, hang_seconds=5)
    r = get(tb.url, timeout=30)
    assert r.status_code == 504
    assert r.headers["server"] == "awselb/2.0" and b"504 Gateway Time-out" in r.content
    assert_no_cors(r)


def test_cors_misconfig_is_an_app_200_without_allow_origin(make_testbed):
    tb = make_testbed()
    assert get(tb.url).headers["access-control-allow-origin"] == ORIGIN
    tb.set_fault("cors-misconfig", True)
    r = get(tb.url)
    assert r.status_code == 200 and r.json()["ok"] is True
    assert r.headers["server"] == "gunicorn"  # produced by the app, not the proxy
    assert_no_cors(r)
    assert "access-control-allow-origin" not in preflight(tb.url).headers
    tb.set_fault("cors-misconfig", False)
    assert get(tb.url).headers["access-control-allow-origin"] == ORIGIN


def test_health_host_marks_target_down_while_browser_traffic_still_works(make_testbed):
    tb = make_testbed(faults={"health-host"})
    # On a busy machine the app's first answer can miss the 1 s check timeout (L7TOUT) before
    # the checks settle on what this fault causes: Django's 400 to the checker's Host.
    st = tb.wait_for_health("DOWN", check_status="L7STS")
    assert st.check_code == "400"
    r = get(tb.url)  # fail-open: routed to the unhealthy target, whose app answers
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    # The checker sent the ALB's Host (target IP:port), which ALLOWED_HOSTS rejected.
    log = tb.gunicorn_log.read_text()
    assert f"Invalid HTTP_HOST header: '{tb.config.target_ip}:{tb.app_port}'" in log
    tb.set_fault("health-host", False)
    tb.wait_for_health("UP")


def test_blocked_port_gives_alb_504_and_health_timeouts(make_testbed):
    tb = make_testbed(connect_timeout=1.0)
    tb.wait_for_health("UP")
    tb.set_fault("blocked-port", True)
    t0 = time.monotonic()
    r = get(tb.url)
    # The ALB answers a target connect timeout with 504 (a refusal would be 502).
    assert r.status_code == 504 and r.headers["server"] == "awselb/2.0"
    assert b"504 Gateway Time-out" in r.content
    assert time.monotonic() - t0 >= 0.9  # a connect timeout, not a refusal
    assert_no_cors(r)
    # The checks behind the block time out at connect (L4TOUT). A check that connected before
    # the block can still time out at L7 on a busy machine and be the one that turned it DOWN,
    # so wait for a check made behind the block (bounded by the health budget).
    st = tb.wait_for_health("DOWN", check_status="L4TOUT")
    assert st.status.startswith("DOWN") and st.check_status == "L4TOUT"
    tb.set_fault("blocked-port", False)
    tb.wait_for_health("UP")
    assert get(tb.url).status_code == 200


def _low_rate_run(url: str, *, users: int, per_user: int, stop_on_502: bool) -> Counter:
    """Users each on one keep-alive connection, idle gaps around the backend keep-alive."""
    counts: Counter = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def user(seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(timeout=10) as c:
            for _ in range(per_user):
                if stop.is_set():
                    return
                time.sleep(rnd.uniform(0.9, 2.1))
                try:
                    k = c.get(url + "/api/fast").status_code
                except httpx.HTTPError as exc:
                    k = type(exc).__name__
                with lock:
                    counts[k] += 1
                if k == 502 and stop_on_502:
                    stop.set()

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return counts


@pytest.mark.slow
def test_keepalive_race_gives_sporadic_502_and_none_when_switched_off(make_testbed):
    tb = make_testbed(health_interval=5, faults={"keepalive-race"})
    assert tb.capacity()["worker_class"] == "gthread" and tb.capacity()["keepalive"] == 1.0
    on = _low_rate_run(tb.url, users=12, per_user=40, stop_on_502=True)  # <= 480 requests
    assert sum(on.values()) <= 500
    assert on[502] >= 1, on
    log = "".join(tb.haproxy_logs[0].read_text().splitlines(keepends=True))
    assert " 502 " in log and "SH--" in log  # target closed with the request outstanding
    tb.set_fault("keepalive-race", False)
    off = _low_rate_run(tb.url, users=12, per_user=12, stop_on_502=False)
    assert off[200] == sum(off.values()) == 144, off


def _races_502_servers(tb, since: int) -> Counter:
    """HAProxy servers of the keep-alive race's 502s (target closed, request outstanding) logged
    after byte ``since`` of the proxy log."""
    text = tb.haproxy_logs[0].read_text(errors="replace")[since:]
    servers: Counter = Counter()
    for line in text.splitlines():
        if " 502 " in line and "SH--" in line:
            servers[next(w.split("/")[1] for w in line.split() if w.startswith("be_"))] += 1
    return servers


@pytest.mark.slow
def test_keepalive_race_on_one_target_of_two_and_on_the_whole_group(make_testbed):
    tb = make_testbed(targets=2, health_interval=5)
    assert [tb._gunicorn_spec(s).worker_class for s in tb.slots] == ["sync", "sync"]
    # One target: only target 2 gets gthread with the short keep-alive and a relay in front.
    tb.set_fault("keepalive-race", True, target=2)
    specs = [tb._gunicorn_spec(s) for s in tb.slots]
    assert [(g.worker_class, g.keepalive) for g in specs] == [("sync", 2.0), ("gthread", 1.0)]
    assert set(tb._relays) == {2}
    since = tb.haproxy_logs[0].stat().st_size
    on = _low_rate_run(tb.url, users=12, per_user=40, stop_on_502=True)
    assert on[502] >= 1, on
    servers = _races_502_servers(tb, since)
    assert servers["target-2"] >= 1 and servers["target"] == 0, servers
    # The whole group: both targets race, each behind its own relay.
    tb.set_fault("keepalive-race", False, target=2)
    assert tb._relays == {}
    tb.set_fault("keepalive-race", True)
    assert set(tb._relays) == {1, 2}
    assert {tb._gunicorn_spec(s).worker_class for s in tb.slots} == {"gthread"}
    assert _low_rate_run(tb.url, users=12, per_user=40, stop_on_502=True)[502] >= 1
    procs = [r for r, _ in tb._relays.values()]
    tb.stop()
    assert tb.listening_ports() == [] and all(p.poll() is not None for p in procs)


def test_stop_leaves_nothing_listening_and_no_children(make_testbed):
    tb = make_testbed(faults={"keepalive-race"})
    procs = [tb.slots[0].gunicorn.proc, tb._haproxy.proc, tb._relays[1][0]]
    tb.stop()
    assert tb.listening_ports() == []
    assert all(p.poll() is not None for p in procs)
