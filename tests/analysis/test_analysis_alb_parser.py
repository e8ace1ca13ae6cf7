import gzip
from pathlib import Path

import pytest
from alb_doc_lines import AWS_DOC_LINES

from analysis import dataset
from analysis.parsers import alb

EXPECTED = {
    "http": dict(
        type="http",
        elb="app/my-loadbalancer/50dc6c495c0c9188",
        client_port="192.168.131.39:2817",
        target_port="10.0.0.1:80",
        request_processing_time=0.0,
        target_processing_time=0.001,
        response_processing_time=0.0,
        elb_status_code=200,
        target_status_code=200,
        received_bytes=34,
        sent_bytes=366,
        request="GET http://www.example.com:80/ HTTP/1.1",
        user_agent="curl/7.46.0",
        ssl_cipher="-",
        ssl_protocol="-",
        trace_id="Root=1-58337262-36d228ad5d99923122bbe354",
        domain_name="-",
        chosen_cert_arn="-",
        matched_rule_priority="0",
        actions_executed="forward",
        redirect_url="-",
        error_reason="-",
        target_port_list="10.0.0.1:80",
        target_status_code_list="200",
        classification="-",
        classification_reason="-",
    ),
    "https": dict(
        type="https",
        request_processing_time=0.086,
        target_processing_time=0.048,
        response_processing_time=0.037,
        received_bytes=0,
        sent_bytes=57,
        ssl_cipher="ECDHE-RSA-AES128-GCM-SHA256",
        ssl_protocol="TLSv1.2",
        domain_name="www.example.com",
        chosen_cert_arn="arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012",
        matched_rule_priority="1",
        actions_executed="authenticate,forward",
    ),
    "h2": dict(
        type="h2",
        client_port="10.0.1.252:48160",
        target_port="10.0.0.66:9000",
        actions_executed="redirect",
        redirect_url="https://example.com:80/",
        request="GET https://10.0.2.105:773/ HTTP/2.0",
    ),
    # LB-generated 502: target "-" -> None, target_status_code "-" -> None (the ALB made the status)
    "lambda": dict(
        target_port=None,
        elb_status_code=502,
        target_status_code=None,
        error_reason="LambdaInvalidResponse",
    ),
    # the Knowledge Center keep-alive example: response_processing_time -1 is kept as -1
    "kc502": dict(
        request_processing_time=0.001,
        target_processing_time=4.205,
        response_processing_time=-1.0,
        elb_status_code=502,
        target_status_code=None,
        received_bytes=94,
        sent_bytes=326,
        actions_executed=None,
        conn_trace_id=None,
    ),
}


def _check(rec, name):
    for k, v in EXPECTED[name].items():
        got = rec[k]
        if isinstance(v, float):
            assert got == pytest.approx(v), (name, k)
        else:
            assert got == v, (name, k, got)


@pytest.mark.parametrize("name", list(AWS_DOC_LINES))
def test_aws_doc_lines_python_parser(name):
    rec = alb.parse_line(AWS_DOC_LINES[name])
    assert rec is not None
    _check(rec, name)


def test_aws_doc_lines_duckdb_path(tmp_path):
    f = tmp_path / "doc.log"
    f.write_text("\n".join(AWS_DOC_LINES.values()) + "\n")
    con = dataset.connect()
    st = alb.load(con, [f])
    assert (st.lines, st.parsed, st.malformed) == (5, 5, 0)
    cols = [c[0] for c in con.execute("SELECT * FROM alb").description]
    rows = [
        dict(zip(cols, r, strict=True))
        for r in con.execute("SELECT * FROM alb ORDER BY ts, type").fetchall()
    ]
    by = {
        (
            "lambda"
            if r["error_reason"] == "LambdaInvalidResponse"
            else "kc502"
            if r["ts"] > 1.6e9
            else r["type"]
        ): r
        for r in rows
    }
    for name in EXPECTED:
        _check(by[name], name)
    # time: ISO 8601 -> epoch seconds (UTC), microseconds kept
    assert by["http"]["ts"] == pytest.approx(1530570180.186641)
    assert by["http"]["request_creation_time"] == pytest.approx(1530570168.364)


def test_trailing_fields_ignored_and_conn_trace_id_read(tmp_path):
    line = (
        AWS_DOC_LINES["http"]
        + ' TID_1234abcd5678ef90 "-" "-" "-" 100.51.96.60 "-" "-" "future1" future2'
    )
    f = tmp_path / "x.log"
    f.write_text(line + "\n")
    con = dataset.connect()
    st = alb.load(con, [f])
    assert st.parsed == 1 and st.malformed == 0
    assert con.execute("SELECT conn_trace_id, elb_status_code FROM alb").fetchone() == (
        "TID_1234abcd5678ef90",
        200,
    )
    assert alb.parse_line(line)["conn_trace_id"] == "TID_1234abcd5678ef90"


def test_malformed_lines_counted_not_fatal(tmp_path):
    good = AWS_DOC_LINES["http"]
    lines = [
        good,
        "garbage that is not a log line",
        good.replace(" 200 200 ", " abc 200 ", 1),  # status not a number
        good[:60],  # truncated mid-line
        good[: good.index('"GET') + 10],  # cut inside the quoted request
        good.replace('"curl/7.46.0"', '"curl/7.46.0'),  # unterminated quote: read leniently
        good,
    ]
    f = tmp_path / "bad.log"
    f.write_text("\n".join(lines) + "\n")
    con = dataset.connect()
    st = alb.load(con, [f])
    assert (st.lines, st.parsed, st.malformed) == (7, 3, 4)
    assert con.execute("SELECT count(*) FROM alb WHERE elb_status_code = 200").fetchone()[0] == 3
    for bad in lines[1:5]:
        assert alb.parse_line(bad) is None
    assert len(st.examples) == 3


def test_truncated_gzip_keeps_lines_before_the_cut(tmp_path):
    from fixtures import synth

    lines = list(synth.alb_lines(20000, seed=5))
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(data[: len(data) // 2])
    whole = tmp_path / "whole.log.gz"
    whole.write_bytes(data)
    con = dataset.connect()
    st = alb.load(con, [whole, cut])
    assert str(cut) in st.truncated_files
    n = con.execute("SELECT count(*) FROM alb").fetchone()[0]
    assert 20000 + 1000 < n < 40000  # all of the whole file, part of the cut one
    assert st.parsed == n


def test_window_filter_and_gz_folder(tmp_path):
    from fixtures import synth

    paths = synth.write_alb_logs(tmp_path / "logs", 3000, files=3)
    assert all(p.suffix == ".gz" for p in paths)
    assert alb.list_files(tmp_path / "logs") == sorted(paths)
    con = dataset.connect()
    st = alb.load(con, paths, since=synth.T0 + 10, until=synth.T0 + 20)
    assert st.parsed == 3000
    assert con.execute("SELECT count(*) FROM alb").fetchone()[0] == 1000  # 100 lines/s for 10 s


def test_keepalive_signature_classified(tmp_path):
    from analysis import correlate
    from fixtures import synth

    paths = synth.write_alb_logs(tmp_path / "l", 5000, files=1)
    ds = dataset.open_alb_logs(paths, since=None, until=None)
    fig, _ = correlate.compute(ds)
    assert fig["alb_elb_502"] == 10 and fig["alb_target_closed"] == 10
    assert fig["alb_connect_fail"] == 0 and fig["alb_target_5xx"] == 0
    assert isinstance(Path(paths[0]), Path)
