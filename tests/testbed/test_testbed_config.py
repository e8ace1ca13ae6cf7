"""The ALB semantics encoded in the generated HAProxy config (pure, no processes)."""

from pathlib import Path

import pytest

from testbed import TestbedConfig
from testbed.haproxy import HaproxyLayout, parse_show_stat, render_config

LAYOUT = HaproxyLayout(18080, "127.0.0.2", 18000, Path("/tmp/x.sock"), None, Path("/tmp/core.sock"))


def test_alb_knobs_are_rendered():
    cfg = TestbedConfig(
        app_port=18000,
        health_interval=30,
        health_timeout=5,
        healthy_threshold=5,
        unhealthy_threshold=2,
        idle_timeout=60,
        connect_timeout=10,
    )
    text = render_config(cfg, LAYOUT)
    assert "timeout client 60000ms" in text and "timeout server 60000ms" in text
    assert "timeout connect 10000ms" in text and "timeout check 5000ms" in text
    assert "inter 30000ms rise 5 fall 2" in text
    assert "hdr Host 127.0.0.2:18000 hdr User-Agent ELB-HealthChecker/2.0" in text
    assert "http-check expect status 200" in text
    assert "retries 0" in text
    assert (
        "errorfile 503" in text and "alb-502.http" in text.split("errorfile 503")[1].splitlines()[0]
    )
    assert "target-failopen 127.0.0.2:18000 backup" in text


def test_blocked_route_serves_the_alb_504_on_connect_failure():
    layout = HaproxyLayout(
        18080,
        "127.0.0.2",
        18000,
        Path("/tmp/x.sock"),
        None,
        Path("/tmp/core.sock"),
        Path("/tmp/route.map"),
        ("127.0.0.1", 19999),
    )
    text = render_config(TestbedConfig(app_port=18000), layout)
    assert "use_backend %[str(route),map(/tmp/route.map,be_targets)]" in text
    blocked = text.split("backend be_blocked", 1)[1]
    assert "alb-504.http" in blocked.split("server", 1)[0] and "127.0.0.1:19999" in blocked


def test_fail_open_can_be_switched_off():
    assert "backup" not in render_config(TestbedConfig(fail_open=False), LAYOUT)


def test_unknown_fault_and_worker_class_are_refused():
    with pytest.raises(ValueError, match="unknown testbed fault"):
        TestbedConfig(faults=frozenset({"nope"}))
    with pytest.raises(ValueError, match="worker_class"):
        TestbedConfig(worker_class="gevent")


def test_error_pages_match_the_alb_byte_for_byte():
    from testbed.haproxy import ERRORPAGES

    raw = (ERRORPAGES / "alb-502.http").read_bytes()
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"Server: awselb/2.0" in head and b"Content-Length: 122" in head
    assert body == (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    assert len((ERRORPAGES / "alb-503.http").read_bytes().split(b"\r\n\r\n", 1)[1]) == 162


def test_parse_show_stat():
    text = (
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
        "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
        "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
        "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
        "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,\n"
        "be_targets,target,0,0,3,5,,10,0,0,,0,,2,1,0,0,DOWN,1,1,0,1,1,5,5,,1,3,1,,10,,2,0,,4,"
        "* L4CON,,0,0,8,0,0,2,0,,,,,0,0,0,0,0,0,1,Connection refused,\n"
        "be_targets,BACKEND,0,0,3,5,,10,0,0,0,0,,2,1,0,0,UP,1,1,0,,1,5,5,,1,3,0,,10,,1,0,,4,,,,,,,,,,,,,,,,,,,,,\n"
    )
    (row,) = parse_show_stat(text)
    assert row.name == "target" and row.is_down and row.check_status == "L4CON"
    assert row.scur == 3 and row.hrsp_5xx == 2 and row.last_chk == "Connection refused"
