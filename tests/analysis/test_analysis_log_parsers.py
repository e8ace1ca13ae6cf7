import pytest

from analysis import dataset
from analysis.parsers import gunicorn, haproxy

HAP = [
    '127.0.0.1:39482 [26/Nov/2026:13:00:00.123] fe_alb be_targets/target 0/0/0/5/5 200 123 - - ---- 1/1/0/0/0 0/0 "GET /api/fast HTTP/1.1"',
    '<134>Nov 26 13:00:01 haproxy[12]: 127.0.0.1:39483 [26/Nov/2026:13:00:01.500] fe_alb be_targets/target 0/0/-1/-1/3002 503 217 - - SC-- 5/5/4/0/0 0/0 "GET /api/fast HTTP/1.1"',
    'unix:1 [26/Nov/2026:13:00:02.000] fe_core be_targets/target-failopen 0/0/-1/-1/1000 503 217 - - sC-- 5/5/4/0/0 0/0 {api.hakwonplus.com} "GET /api/x?y=1 HTTP/1.1"',
    "Proxy fe_alb started.",
    '127.0.0.1:39485 [26/Nov/2026:13:00:02.000] fe_alb be_targets/target 0/0/0/-1/12 502 232 - - SH-- 5/5/4/0/0 0/0 "<BADREQ>"',
    '127.0.0.1:39486 [26/Nov/2026:13:00:03.000] fe_alb be_targets/target 0/0/0/-1/30001 504 195 - - sH-- 5/5/4/3/0 0/0 "GET /api/slow HTTP/1.1"',
    "127.0.0.1:39487 [26/Nov/2026:13:00:03.000] fe_alb be_targ",  # cut mid-write
    '127.0.0.1:39488 [26/Nov/2026:13:00:04.000] fe_alb be_targets/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1"',
]


def test_haproxy_fields_timers_and_termination(tmp_path):
    f = tmp_path / "haproxy-1.log"
    f.write_text("\n".join(HAP) + "\n")
    con = dataset.connect()
    st = haproxy.load(con, [f])
    assert (st.lines, st.parsed, st.malformed, st.other) == (8, 6, 1, 1)
    rows = con.execute(
        f"SELECT ts, client, server, t_connect, t_resp, t_active, status, term, srv_conn, method, path, {haproxy.classify_sql()} "
        "FROM haproxy ORDER BY ts, status"
    ).fetchall()
    assert rows[0][:11] == (
        pytest.approx(1795698000.123),
        "127.0.0.1",
        "target",
        0,
        5,
        5,
        200,
        "----",
        0,
        "GET",
        "/api/fast",
    )
    classes = [r[-1] for r in rows]
    assert classes == [
        "ok",
        "connect-refused",
        "server-closed",
        "connect-timeout",
        "server-timeout",
        "no-server",
    ]
    assert rows[2][2] == "target" and rows[2][4] == -1  # SH-- with no server response timer
    assert rows[3][1] == "unix" and rows[3][2] == "target-failopen" and rows[3][10] == "/api/x?y=1"


def test_haproxy_local_time_realigned_to_run(tmp_path):
    from fixtures import synth

    run = synth.write(tmp_path, "keepalive-race")
    log = run / "logs" / "haproxy-1.log"
    # Rewrite the timestamps as if HAProxy ran at UTC+9 (local time, no zone in the log).
    import re
    import time

    def shift(m):
        t = time.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S")
        return (
            "["
            + time.strftime(
                "%d/%b/%Y:%H:%M:%S", time.gmtime(time.mktime(t) - time.timezone + 9 * 3600)
            )
            + m.group(2)
            + "]"
        )

    log.write_text(re.sub(r"\[(\d+/\w+/\d+:\d+:\d+:\d+)(\.\d+)\]", shift, log.read_text()))
    ds = dataset.open_run(run)
    lo, hi = ds.con.execute("SELECT min(ts), max(ts) FROM haproxy").fetchone()
    assert lo >= synth.T0 - 1 and hi <= synth.T0 + 61
    assert any("+9.00 h" in n or "-9.00 h" in n for n in ds.notes)


GLOG = """[2026-11-26 13:00:00 +0000] [100] [INFO] Starting gunicorn 23.0.0
[2026-11-26 13:00:00 +0000] [100] [INFO] Listening at: http://0.0.0.0:8000 (100)
[2026-11-26 13:00:00 +0000] [101] [INFO] Booting worker with pid: 101
[2026-11-26 13:00:31 +0000] [100] [CRITICAL] WORKER TIMEOUT (pid:101)
[2026-11-26 13:00:32 +0000] [100] [ERROR] Worker (pid:101) was sent SIGKILL! Perhaps out of memory?
Traceback (most recent call last):
  File "x.py", line 1, in <module>
[2026-11-26 13:00:33 +0000] [100] [ERROR] Worker (pid:102) exited with code 1.
[2026-11-26 13:00:33 +0000] [100] [ERROR] Worker (pid:103) exited with code: 3
[2026-11-26 13:00:34 +0900] [104] [INFO] Booting worker with pid: 104
[2026-11-26 13:00:3
[2026-11-26 13:00:40 +0000] [100] [INFO] Shutting down: Master
"""


def test_gunicorn_exact_strings(tmp_path):
    f = tmp_path / "gunicorn.log"
    f.write_text(GLOG)
    evs, st = gunicorn.load([f])
    kinds = [(e.kind, e.pid) for e in evs]
    assert kinds == [
        ("master_start", 100),
        ("worker_boot", 101),
        ("worker_timeout", 101),
        ("worker_killed", 101),
        ("worker_exit", 102),
        ("worker_exit", 103),
        ("worker_boot", 104),
        ("master_stop", 100),
    ]
    assert evs[2].ts == 1795698031.0  # 2026-11-26 13:00:31 UTC
    assert evs[6].ts == 1795698034.0 - 9 * 3600  # +0900 honoured
    assert "SIGKILL" in evs[3].detail
    assert st.malformed == 1 and st.other == 3 and st.parsed == 8
