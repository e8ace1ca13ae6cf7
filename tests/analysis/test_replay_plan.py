"""The replay plan (analysis/replay_plan.py): the log window, line for line, with what is and is
not sent and why. Pure: files in, Parquet out, no network."""

from __future__ import annotations

import gzip
import time

import duckdb
import pyarrow.parquet as pq
import pytest

from analysis.replay_plan import PlanOptions, build_plan, read_summary, secret_regex
from core.errors import AlbprobeError
from core.replay import PLAN_COLUMNS, REDACTED
from fixtures import alb_window as aw

T0 = 1_796_000_000.0


def _window() -> list[aw.Entry]:
    """A known shape: one keep-alive connection with 3 calls (preflight + GET + GET), a write,
    a secret query, three engines, a '- - -' line and a request the ALB rejected itself."""
    c1, c2, c3 = "203.0.113.1:40001", "203.0.113.2:40002", "203.0.113.3:40003"
    return [
        aw.Entry(at=T0 + 0.00, method="OPTIONS", path="/api/items", client=c1, target_status=200),
        aw.Entry(at=T0 + 0.10, method="PUT", path="/api/items", client=c1),
        aw.Entry(at=T0 + 0.20, path="/api/fast?token=s3cr3t&page=2", client=c1),
        aw.Entry(at=T0 + 0.50, path="/api/slow?ms=200", client=c2, engine="firefox", target_s=0.2),
        aw.Entry(
            at=T0 + 1.20,
            path="/api/fast?X-Amz-Signature=abc&sessionId=9",
            client=c3,
            engine="webkit",
        ),
        aw.Entry(
            at=T0 + 1.30,
            method=None,
            client="203.0.113.4:1",
            elb_status=400,
            target_status=None,
            target=None,
        ),
        aw.Entry(
            at=T0 + 1.40,
            path="/api/fast",
            client="203.0.113.5:2",
            elb_status=414,
            target_status=None,
            target=None,
            engine="other",
        ),
        aw.Entry(at=T0 + 2.50, path="/api/fast", client=c1),
        aw.Entry(
            at=T0 + 2.60,
            path="/api/fast",
            client=c2,
            elb_status=502,
            target_status=None,
            connect_failed=True,
            engine="firefox",
        ),
    ]


def _plan(tmp_path, entries=None, *, extra=(), **opts):
    files = aw.write(tmp_path / "logs", [*(aw.line(e) for e in entries or _window()), *extra])
    summary = build_plan(files, "logs", tmp_path / "plan", opts=PlanOptions(**opts))
    rows = pq.read_table(tmp_path / "plan" / "plan.parquet").to_pylist()
    return summary, rows


def test_every_line_becomes_one_row_in_arrival_order_with_why_not_sent(tmp_path):
    summary, rows = _plan(tmp_path, extra=["this is not an ALB entry"])
    assert list(rows[0]) == list(PLAN_COLUMNS)
    assert [r["line"] for r in rows] == list(range(1, 10))
    assert [r["offset_s"] for r in rows] == pytest.approx(
        [0, 0.1, 0.2, 0.5, 1.2, 1.3, 1.4, 2.5, 2.6]
    )
    assert [r["action"] for r in rows] == [
        "send",
        "skip-write",
        "send",
        "send",
        "send",
        "not-forwarded",
        "not-forwarded",
        "send",
        "send",
    ]
    assert summary.actions == {"send": 6, "skip-write": 1, "not-forwarded": 2}
    assert summary.malformed == 1 and summary.malformed_examples[0].startswith("this is not")
    assert [(r["line"], r["elb_status"]) for r in summary.not_forwarded] == [(6, 400), (7, 414)]
    assert summary.writes_skipped == [{"method": "PUT", "path": "/api/items", "lines": 1}]
    # the original's picture: one connect-failed 502, ALB-generated
    assert summary.original == {"5xx": 1, "502": 1, "alb_5xx": 1, "target_5xx": 0}
    assert read_summary(tmp_path / "plan") == summary


def test_preflights_engines_lanes_and_connection_order(tmp_path):
    _, rows = _plan(tmp_path)
    by = {r["line"]: r for r in rows}
    assert (by[1]["kind"], by[1]["preflight_for"]) == ("preflight", "PUT")  # the client's next call
    assert {by[i]["engine"] for i in (1, 4, 5, 7)} == {"chromium", "firefox", "webkit", "other"}
    # one client:port = one lane; its last *sent* line frees it
    assert by[1]["lane"] == by[3]["lane"] == by[8]["lane"] != by[4]["lane"]
    assert [by[i]["last_in_lane"] for i in (1, 3, 8)] == [False, False, True]
    assert by[4]["target_ms"] == pytest.approx(200) and by[9]["target_ms"] is None


def test_secret_query_values_are_replaced_and_named(tmp_path):
    summary, rows = _plan(tmp_path, secret_params=("page",))
    by = {r["line"]: r for r in rows}
    assert by[3]["path"] == f"/api/fast?token={REDACTED}&page={REDACTED}"
    assert by[5]["path"] == f"/api/fast?X-Amz-Signature={REDACTED}&sessionId={REDACTED}"
    assert by[4]["path"] == "/api/slow?ms=200"  # not secret-looking: kept
    assert summary.redacted == {"token": 1, "page": 1, "X-Amz-Signature": 1, "sessionId": 1}
    assert all("s3cr3t" not in str(r) for r in rows)


def test_secret_regex_matches_names_case_insensitively():
    pat = secret_regex(["tenant"])
    got = duckdb.sql(
        f"SELECT regexp_replace('/x?A=1&apiKEY=2&Tenant_id=3&codes=4', '{pat}', '\\1\\2=R', 'g')"
    ).fetchall()
    assert got == [("/x?A=1&apiKEY=R&Tenant_id=R&codes=R",)]


def test_writes_go_only_with_allow_writes_and_a_body_template(tmp_path):
    _, rows = _plan(tmp_path, allow_writes=True)
    assert rows[1]["action"] == "skip-write"  # no template for /api/items
    _, rows = _plan(tmp_path / "b", allow_writes=True, bodies={"/api/items": '{"title": "x"}'})
    assert rows[1]["action"] == "send"


def test_limit_paths_speed_and_scale(tmp_path):
    summary, rows = _plan(tmp_path, limit=2, paths="^/api/fast$")
    sent = [r["line"] for r in rows if r["action"] == "send"]
    assert (
        sent == [3, 5] and summary.actions["filtered"] == 3 and summary.actions["beyond-limit"] == 2
    )
    # x3 scale: three lanes per connection (the clones keep the order of their lane); x2 speed
    entries = list(aw.steady(T0, 10, 20, clients=4))
    summary, rows = _plan(tmp_path / "s", entries, scale=3, speed=2)
    assert summary.sent == 600 and summary.lanes == 12
    assert summary.peak_rps == pytest.approx(120, abs=12)  # 20/s x3 x2
    assert summary.duration_s == pytest.approx(summary.span_s / 2)
    for lane in {r["lane"] for r in rows}:
        lines = [r["line"] for r in rows if r["lane"] == lane]
        assert lines == sorted(lines)


def test_fractional_scale_thins_whole_lanes(tmp_path):
    entries = list(aw.steady(T0, 10, 50))  # 500 lines, each on its own connection
    summary, _ = _plan(tmp_path, entries, scale=0.5)
    assert 180 < summary.sent < 320


@pytest.mark.parametrize(
    "opts, words",
    [
        ({"speed": 0}, "--speed 0: must be > 0"),
        ({"scale": -1}, "--scale -1: must be > 0"),
        ({"limit": 0}, "--limit 0"),
        ({"paths": "("}, "--paths '(': not a regular expression"),
    ],
)
def test_bad_options_are_one_line(tmp_path, opts, words):
    with pytest.raises(AlbprobeError, match=words.replace("(", r"\(")):
        _plan(tmp_path, **opts)


def test_empty_window_other_balancer_and_corrupt_gz(tmp_path):
    files = aw.write(tmp_path / "a", [aw.line(e) for e in _window()])
    # the window misses: the error says where the entries are (UTC), for replay as for analyze
    span = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T0))
    with pytest.raises(AlbprobeError, match=f"no ALB log entry in the window: .* span {span} to"):
        build_plan(files, "a", tmp_path / "p", since=T0 + 100, until=T0 + 200)
    nlb = [aw.line(aw.Entry(at=T0, elb="net/my-nlb/1234"))]
    with pytest.raises(AlbprobeError, match="not an Application Load Balancer"):
        build_plan(aw.write(tmp_path / "n", nlb), "n", tmp_path / "p")
    two = [aw.line(aw.Entry(at=T0)), aw.line(aw.Entry(at=T0, elb="app/other/99"))]
    with pytest.raises(AlbprobeError, match="mixes 2 load balancers"):
        build_plan(aw.write(tmp_path / "t", two), "t", tmp_path / "p")
    with pytest.raises(AlbprobeError, match="not of \\[aws\\] load_balancer 'prod-alb'"):
        build_plan(files, "a", tmp_path / "p", load_balancer="prod-alb")
    bad = tmp_path / "c" / "x.log.gz"
    bad.parent.mkdir()
    bad.write_bytes(gzip.compress(b"x")[:8] + b"garbage")
    with pytest.raises(AlbprobeError, match="corrupt .gz"):
        build_plan([bad], "c", tmp_path / "p")
