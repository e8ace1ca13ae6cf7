"""Several targets behind the proxy: per-target health, routing, registration and draining, as the
ALB does them, on real HAProxy + gunicorn."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from testbed import TestbedError
from testbed.haproxy import ERRORPAGES, render_config

ORIGIN = "https://hakwonplus.com"
ALB_502_BODY = (ERRORPAGES / "alb-502.http").read_bytes().split(b"\r\n\r\n", 1)[1]
ALB_503_BODY = (ERRORPAGES / "alb-503.http").read_bytes().split(b"\r\n\r\n", 1)[1]


def get(base: str, path: str = "/api/fast", timeout: float = 30) -> httpx.Response:
    return httpx.get(base + path, headers={"Origin": ORIGIN}, timeout=timeout)


def target_of(r: httpx.Response) -> str | None:
    return r.headers.get("x-albprobe-target")


def wait_until(cond: Callable[[], bool], budget: float, what: str) -> None:
    deadline = time.monotonic() + budget
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def all_up(tb) -> None:
    """Every target fully UP at the same moment, after a passing check. HAProxy starts a server
    UP: a boot slower than `fall` checks (a starved machine) takes it DOWN, and its first pass
    then reads "DOWN 1/2" with L7OK; "UP 2/5" is one going down. Waiting for "UP" and for
    L7OK one after the other let a target through that was still DOWN 1/2."""
    wait_until(
        lambda: all(st.status == "UP" and st.check_status == "L7OK" for _, st in tb.target_stats()),
        tb.health_budget(),
        "every target fully up after a passing check",
    )


def in_background(fn: Callable[[], httpx.Response]) -> tuple[threading.Thread, list]:
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def test_targets_zero_and_unknown_algorithm_are_refused():
    from testbed import TestbedConfig

    with pytest.raises(ValueError, match="targets must be between 1 and 50"):
        TestbedConfig(targets=0)
    with pytest.raises(ValueError, match="load_balancing"):
        TestbedConfig(load_balancing="random")


def test_least_outstanding_requests_renders_leastconn():
    from pathlib import Path

    from testbed import TestbedConfig
    from testbed.haproxy import HaproxyLayout

    layout = HaproxyLayout(
        1, "127.0.0.2", 2, Path("/t/s"), None, Path("/t/c"), more_servers=(("127.0.0.3", 2),)
    )
    text = render_config(
        TestbedConfig(app_port=2, targets=2, load_balancing="least_outstanding_requests"), layout
    )
    assert "balance leastconn" in text
    # each target its own checker, with its own Host header
    assert "hdr Host 127.0.0.2:2 " in text and "hdr Host 127.0.0.3:2 " in text
    assert "target-2-failopen 127.0.0.3:2 backup" in text


def test_each_target_serves_its_share_and_names_itself(make_testbed):
    tb = make_testbed(targets=2)
    all_up(tb)
    labels = [label for label, _ in tb.target_stats()]
    assert labels == tb.target_labels == [f"127.0.0.2:{tb.app_port}", f"127.0.0.3:{tb.app_port}"]
    seen = Counter(target_of(get(tb.url)) for _ in range(30))
    # round robin: each target gets about half (health checks and timing can shift one or two)
    assert set(seen) == set(labels) and min(seen.values()) >= 10, seen
    assert all(st.is_up for _, st in tb.target_stats())


def test_least_outstanding_requests_prefers_the_idle_target(make_testbed):
    tb = make_testbed(targets=2, load_balancing="least_outstanding_requests")
    all_up(tb)
    # 20 s of sleep: the six requests below must all go out while it is in flight, and on a
    # starved machine finding it in the stats and sending six took more than 4 s
    slow_t, slow = in_background(lambda: get(tb.url, "/api/slow?ms=20000", timeout=60))
    wait_until(
        lambda: any(st.scur >= 1 for _, st in tb.target_stats()), 20, "the slow request in flight"
    )
    busy = next(label for label, st in tb.target_stats() if st.scur >= 1)
    fast = [target_of(get(tb.url)) for _ in range(6)]
    still = dict(tb.target_stats())[busy].scur
    assert still >= 1, "the slow request ended before the fast ones: the check proves nothing"
    # round robin would send half of them to the busy target; LOR sends none
    assert busy not in fast and len(set(fast)) == 1, (busy, fast)
    slow_t.join(60)
    assert target_of(slow[0]) == busy


def test_one_target_down_fails_its_share_until_health_checks_remove_it(make_testbed):
    # Checks every 3 s, 5 failed ones to take a target out: the dead target keeps its share for
    # 12 s or more, which holds the requests below even on a starved machine (with 2 failed
    # checks a CI box sent six requests in more than 6 s, all to the live target).
    tb = make_testbed(targets=2, health_interval=3.0, unhealthy_threshold=5)
    all_up(tb)
    tb.set_fault("target-down", True, target=2)
    statuses: Counter = Counter()
    for _ in range(20):  # round robin: one request in two goes to the dead target
        assert tb.server_status(2).is_up, f"target 2 taken out before the requests: {statuses}"
        statuses[get(tb.url).status_code] += 1
        if statuses[502] and statuses[200]:
            break
    # target 2 still counts as healthy: its share gets the ALB's 502 (refused connection)
    assert statuses[502] >= 1 and statuses[200] >= 1, statuses
    tb.wait_for_health("DOWN", target=2)
    after = [get(tb.url) for _ in range(10)]
    assert {r.status_code for r in after} == {200}
    assert {target_of(r) for r in after} == {tb.target_labels[0]}
    with pytest.raises(TestbedError, match="target 3 does not exist"):
        tb.set_fault("target-down", True, target=3)


def test_fail_open_only_when_every_target_is_unhealthy(make_testbed):
    tb = make_testbed(targets=2)
    all_up(tb)
    tb.set_fault("health-host", True, target=2)
    tb.wait_for_health("DOWN", target=2, check_status="L7STS")
    one_bad = Counter(target_of(get(tb.url)) for _ in range(8))
    assert set(one_bad) == {tb.target_labels[0]}, one_bad  # the healthy one takes it all
    tb.set_fault("health-host", True, target=1)
    tb.wait_for_health("DOWN", target=1, check_status="L7STS")
    all_bad = [get(tb.url) for _ in range(12)]
    # fail open: both unhealthy targets get traffic again, and they serve it
    assert {r.status_code for r in all_bad} == {200}
    assert {target_of(r) for r in all_bad} == set(tb.target_labels)


def test_drain_finishes_in_flight_requests_and_closes_connections_at_the_delay(make_testbed):
    tb = make_testbed(targets=2, deregistration_delay=3.0)
    all_up(tb)
    # find which target a slow request lands on, and deregister that one while it runs
    short_t, short = in_background(lambda: get(tb.url, "/api/slow?ms=1500"))
    wait_until(lambda: any(st.scur >= 1 for _, st in tb.target_stats()), 10, "request in flight")
    idx = next(i for i, (_, st) in enumerate(tb.target_stats(), 1) if st.scur >= 1)
    tb.deregister(idx)
    assert tb.server_status(idx).status.startswith("DRAIN")
    other = tb.target_labels[2 - idx]
    assert {target_of(get(tb.url)) for _ in range(6)} == {other}  # no new requests
    short_t.join(30)
    assert short[0].status_code == 200 and target_of(short[0]) == tb.target_labels[idx - 1]
    tb.wait_drained(idx)
    kinds = [e["kind"] for e in tb.events if e.get("target") == tb.target_labels[idx - 1]]
    assert kinds[-2:] == ["target_deregistered", "target_drained"]
    assert tb.server_status(idx).status.startswith("MAINT")


def test_a_request_outliving_the_drain_is_cut_with_a_502(make_testbed):
    tb = make_testbed(deregistration_delay=1.0)
    all_up(tb)
    long_t, long = in_background(lambda: get(tb.url, "/api/slow?ms=8000"))
    wait_until(lambda: tb.server_status().scur >= 1, 10, "request in flight")
    t0 = time.monotonic()
    tb.deregister(1)
    long_t.join(30)
    assert long[0].status_code == 502 and long[0].content == ALB_502_BODY
    assert time.monotonic() - t0 < 7  # cut at the delay, not at the request's end


def test_no_registered_target_gets_the_albs_503_and_registration_waits_for_health(make_testbed):
    # Three passing checks 1 s apart: the target stays initial for 2 s or more, time for a
    # request sent before the checker admits it, even on a busy machine.
    tb = make_testbed(targets=2, deregistration_delay=0.0, healthy_threshold=3, health_interval=1.0)
    all_up(tb)
    # What a lock-free reader of the slot would see when each event is published: the event
    # must come first, so a reader that sees the new state always finds it (issue 24).
    at_emit: dict[str, tuple[bool, bool, bool]] = {}

    def note(ev: dict) -> None:
        s = tb.slot(1)
        if ev.get("target") == tb.target_labels[0]:
            at_emit[ev["kind"]] = (s.registered, s.initial, s.drained.is_set())

    tb.add_listener(note)
    for i in (1, 2):
        tb.deregister(i)
        tb.wait_drained(i)
    r = get(tb.url)
    assert r.status_code == 503 and r.content == ALB_503_BODY
    assert r.headers["server"] == "awselb/2.0" and "access-control-allow-origin" not in r.headers
    tb.register(1)
    assert tb.server_status(1).status == "INITIAL"
    # initial: not routable yet, so the group still has no target to send to
    seen = []  # (the proxy's view of target 1 before the request, status, view after it)
    while tb.slot(1).initial:
        before = tb.server_status(1).status
        status = get(tb.url).status_code
        seen.append((before, status, tb.server_status(1).status))
    # a request answered while the target was still initial (before and after) met no target:
    # the ALB's 503; the first one was sent at once, well within the 2 s of checks
    during = [code for b, code, after in seen if b == after == "INITIAL"]
    assert during and set(during) == {503}, seen
    # a 200 only ever came from a target the checker had already marked UP (UP is sticky here)
    assert all(after.startswith("UP") for _, code, after in seen if code == 200), seen
    assert {code for _, code, _ in seen} <= {200, 503}, seen
    registered = [e for e in tb.events if e["kind"] == "target_healthy"]
    assert registered and registered[-1]["target"] == tb.target_labels[0]
    assert at_emit["target_deregistered"] == (True, False, False)  # still registered
    assert at_emit["target_drained"][2] is False  # wait_drained had not returned yet
    assert at_emit["target_registered"][:2] == (False, False)
    assert at_emit["target_healthy"][:2] == (True, True)  # still initial
    assert {target_of(get(tb.url)) for _ in range(4)} == {tb.target_labels[0]}


def test_worker_kill_logs_the_oom_line_and_the_request_gets_a_502(make_testbed):
    tb = make_testbed(workers=2)
    all_up(tb)
    slow_t, slow = in_background(lambda: get(tb.url, "/api/slow?ms=6000"))
    pid = tb.kill_worker(1)
    slow_t.join(30)
    assert pid is not None
    assert slow[0].status_code == 502 and slow[0].content == ALB_502_BODY
    line = f"Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?"
    wait_until(lambda: line in tb.gunicorn_log.read_text(), 15, "gunicorn's SIGKILL line")
    ev = [e for e in tb.events if e["kind"] == "worker_killed"]
    assert ev[-1]["pid"] == pid and "during a request" in ev[-1]["detail"]
    assert get(tb.url).status_code == 200  # the master replaced the worker


def test_correct_rolling_deploy_fails_no_request(make_testbed):
    tb = make_testbed(targets=2, deregistration_delay=1.0, graceful_timeout=3.0)
    all_up(tb)
    deploy = tb.deploy("correct")
    statuses: Counter = Counter()
    while deploy.is_alive():
        statuses[get(tb.url, "/api/slow?ms=100").status_code] += 1
    kinds = [e["kind"] for e in tb.events]
    assert "deploy_finished" in kinds and "testbed_error" not in kinds, kinds
    assert set(statuses) == {200}, statuses
    assert kinds.count("target_healthy") == 2 and kinds.count("target_stopped") == 2


def test_bad_target_group_input_is_a_one_line_error(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from albprobe.targets import check_schedule, parse_fault_schedule
    from core.config import config_from_dict
    from core.errors import ConfigError
    from testbed.config import FAULTS

    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-m", "albprobe", "testbed", "up", "--targets", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--targets 0" in r.stderr + r.stdout
    with pytest.raises(ConfigError, match="testbed.targets: must be between 1 and 50"):
        config_from_dict({"testbed": {"targets": 0}})
    with pytest.raises(ConfigError, match="least_outstanding_requests"):
        config_from_dict({"testbed": {"load_balancing": "lor"}})
    steps = parse_fault_schedule(["target-down:3@5s-9s"], FAULTS)
    assert steps[0].target == 3
    with pytest.raises(ConfigError, match="target 3 does not exist"):
        check_schedule(steps, targets=2, delay=5, duration=30)
    deploy = parse_fault_schedule(["deploy@10s"], FAULTS)
    with pytest.raises(ConfigError, match="drain past the end of the 30s run"):
        check_schedule(deploy, targets=2, delay=15, duration=30)
    check_schedule(deploy, targets=2, delay=5, duration=30)  # fits
    with pytest.raises(ConfigError, match="cannot name a target"):
        parse_fault_schedule(["blocked-port:2@5s"], FAULTS)
    with pytest.raises(ConfigError, match="happens once"):
        parse_fault_schedule(["deploy@5s-9s"], FAULTS)


def test_max_requests_recycles_workers_without_failing_requests(make_testbed):
    """worker-recycle, measured: gunicorn lets the recycled worker finish its request, so through
    the proxy on loopback every request still succeeds (docs/testbed.md)."""
    from analysis.parsers.gunicorn import load

    tb = make_testbed(worker_class="gthread", workers=1, threads=2, keepalive=5, max_requests=5)
    all_up(tb)
    with httpx.Client() as client:  # one keep-alive client connection through the proxy
        statuses = Counter(
            client.get(tb.url + "/api/fast", headers={"Origin": ORIGIN}, timeout=30).status_code
            for _ in range(30)
        )
    assert statuses == Counter({200: 30})
    wait_until(
        lambda: "Autorestarting worker after current request." in tb.gunicorn_log.read_text(),
        15,
        "gunicorn's recycle line",
    )
    events, _ = load([tb.gunicorn_log])
    recycled = [e for e in events if e.kind == "worker_recycled"]
    boots = {e.pid for e in events if e.kind == "worker_boot"}
    assert recycled and all(e.pid in boots for e in recycled)  # the worker's pid, not the master's
