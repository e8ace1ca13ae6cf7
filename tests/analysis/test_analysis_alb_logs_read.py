"""ALB access logs read right (issue #11): spaces in the URI, one malformed line = one line
whatever the object and thread counts, the ALB's \\xHH escapes, the keep-alive signature apart
from timeout kills and late closes, and the counts/messages of `analyze --alb-logs`."""

import gzip
import json

import pytest
from alb_doc_lines import AWS_DOC_LINES

from albprobe.cli import main
from analysis import correlate, dataset, pipeline
from analysis.parsers import alb
from fixtures import synth

GOOD = AWS_DOC_LINES["http"]
REQUEST = '"GET http://www.example.com:80/ HTTP/1.1"'


def _rows(con, sql):
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# ---- spaces in the URI ---------------------------------------------------------------------

SPACE_URL = "http://www.example.com:80/api/search q?name=a b"
SPACE_LINE = (
    GOOD.replace(REQUEST, f'"GET {SPACE_URL} HTTP/1.1"')[: -len('"-" "-"')]
    + '"Acceptable" "SpaceInUri"'
)


def test_space_in_uri_is_a_request_not_a_malformed_line(tmp_path):
    assert SPACE_LINE.endswith('"200" "Acceptable" "SpaceInUri"')
    rec = alb.parse_line(SPACE_LINE)
    assert rec is not None
    assert (rec["method"], rec["url"], rec["http_version"]) == ("GET", SPACE_URL, "HTTP/1.1")
    assert rec["classification_reason"] == "SpaceInUri"
    f = tmp_path / "space.log"
    f.write_text(SPACE_LINE + "\n" + GOOD + "\n")
    con = dataset.connect()
    st = alb.load(con, [f])
    assert (st.lines, st.parsed, st.malformed) == (2, 2, 0)
    parts = ", ".join(
        f"{alb.request_part_sql('request', p)} AS {p}" for p in ("method", "url", "version")
    )
    got = _rows(con, f"SELECT {parts}, classification FROM alb ORDER BY length(request) DESC")
    assert got[0] == {
        "method": "GET",
        "url": SPACE_URL,
        "version": "HTTP/1.1",
        "classification": "Acceptable",
    }
    assert alb.split_request("- - -") == ("-", "-", "-")
    assert alb.split_request("GET /only-two") is None


# ---- a malformed line is one line, whatever the files and threads ---------------------------

CUT_IN_REQUEST = GOOD[: GOOD.index('"GET') + 10]  # the quote is never closed: malformed
OPEN_USER_AGENT = GOOD.replace('"curl/7.46.0"', '"curl/7.46.0')  # key fields intact: read


@pytest.mark.parametrize("threads", [1, 2, 4, 8])
def test_unbalanced_quote_never_swallows_the_next_line(tmp_path, threads):
    paths = []
    for k in range(12):  # more objects than threads, and fewer: both reader schedules
        bad = CUT_IN_REQUEST if k % 2 else OPEN_USER_AGENT
        lines = [GOOD] * 10 + [bad] + [GOOD.replace("34 366", f"34 {k}")] + [GOOD] * 19
        p = tmp_path / f"obj{k:02d}.log"
        p.write_text("\n".join(lines) + "\n")
        paths.append(p)
    con = dataset.connect()
    con.execute(f"SET threads={threads}")
    st = alb.load(con, paths)
    assert st.lines == 12 * 31
    assert st.malformed == 6  # the six lines cut inside the request; nothing else
    assert st.parsed == 12 * 30 + 6
    # the line right after each bad one is there (its sent_bytes is the object's number)
    assert sorted(
        r[0] for r in con.execute("SELECT sent_bytes FROM alb WHERE sent_bytes < 12").fetchall()
    ) == list(range(12))


def test_cut_gz_with_an_open_quote_is_one_malformed_line(tmp_path):
    lines = [GOOD] * 5 + [CUT_IN_REQUEST] + [GOOD] * 3000
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(data[: len(data) * 3 // 4])
    con = dataset.connect()
    st = alb.load(con, [cut])
    assert st.truncated_files == [str(cut)]
    assert st.malformed == 1 and st.parsed == st.lines - 1 and st.lines > 6


# ---- escapes: raw text kept, decoded once, the same way on both paths ------------------------

ESCAPED_UA = r"Mozilla/5.0 \x22quoted\x22 back\x5cslash caf\xc3\xa9 \xe2\x82\xac"
ESCAPED_LINE = GOOD.replace('"curl/7.46.0"', f'"{ESCAPED_UA}"').replace(
    REQUEST, r'"GET http://www.example.com:80/caf\xc3\xa9?q=\x22x\x22 HTTP/1.1"'
)

DECODE_CASES = [
    ESCAPED_UA,
    r"\x22",
    r"\x5cx22",  # an escaped backslash followed by x22: a literal \x22, not a quote
    r"\xC3\xA9",
    r"\xff\xfe",  # not UTF-8: kept raw
    r"\xed\xa0\x80",  # a UTF-16 surrogate: not UTF-8, kept raw
    r"a\x00b",
    r"half \x4",
    r"upper \X41",
    "plain text, no escape",
    "",
    "caf\u00e9 \\x22",  # a decoded non-ASCII char next to an escape: not the ALB's form, raw
]


def test_decode_python_and_sql_agree():
    con = dataset.connect()
    for raw in DECODE_CASES:
        sql = con.execute(f"SELECT {alb.decode_sql('s')} FROM (SELECT ? AS s)", [raw]).fetchone()[0]
        assert alb.decode(raw) == sql, raw
    assert alb.decode(ESCAPED_UA) == 'Mozilla/5.0 "quoted" back\\slash caf\u00e9 \u20ac'
    assert alb.decode(r"\x5cx22") == "\\x22"
    assert alb.decode(r"\xff\xfe") == r"\xff\xfe"
    assert alb.decode(None) is None


def test_escapes_are_kept_raw_on_every_path(tmp_path):
    rec = alb.parse_line(ESCAPED_LINE)
    assert rec is not None and rec["user_agent"] == ESCAPED_UA
    plain = tmp_path / "plain.log"  # the DuckDB CSV path
    plain.write_text(ESCAPED_LINE + "\n")
    other = tmp_path / "quoted.log"  # a rejected line elsewhere: the line-by-line path
    other.write_text(ESCAPED_LINE + "\n" + CUT_IN_REQUEST + "\n")
    data = gzip.compress(("\n".join([ESCAPED_LINE] * 4000) + "\n").encode())
    cut = tmp_path / "cut.log.gz"  # DuckDB cannot read it: the Python path up to the cut
    cut.write_bytes(data[: len(data) // 2])
    for p in (plain, other, cut):
        con = dataset.connect()
        alb.load(con, [p])
        raw = con.execute("SELECT DISTINCT user_agent, request FROM alb").fetchall()
        assert raw == [(ESCAPED_UA, rec["request"])], p.name
        got = con.execute(
            f"""SELECT DISTINCT {alb.decode_sql("user_agent")},
                       {alb.decode_sql(alb.request_part_sql("request", "url"))} FROM alb"""
        ).fetchall()
        assert got == [(alb.decode(rec["user_agent"]), alb.decode(rec["url"]))], p.name
    assert alb.decode(rec["url"]) == 'http://www.example.com:80/caf\u00e9?q="x"'


# ---- the keep-alive signature: races only -------------------------------------------------


def _closes(tmp_path, timeout=None, **kinds):
    paths = synth.write_alb_logs(tmp_path / "l", 6000, files=2, **kinds)
    opts = {} if timeout is None else {"gunicorn_timeout": timeout}
    ds = dataset.open_alb_logs(paths, since=None, until=None, **opts)
    try:
        tables = pipeline.alb_tables(ds)
        fig, _ = correlate.compute(ds)
        return fig, tables
    finally:
        ds.close()


def test_timeout_kills_and_late_closes_are_not_races(tmp_path):
    # 6000 lines: 12 races (every 500th), kills every 200th, late closes every 300th
    fig, tables = _closes(tmp_path, keepalive_every=500, kill_every=200, late_every=300)
    kind = [
        "race" if i % 500 == 499 else "kill" if i % 200 == 199 else "late" if i % 300 == 299 else ""
        for i in range(6000)
    ]
    races, kills, late = (kind.count(k) for k in ("race", "kill", "late"))
    assert races == 12 and kills > 5 and late > 5
    assert fig["alb_keepalive_race"] == races
    assert fig["alb_timeout_kill"] == kills
    assert fig["alb_closed_late"] == late
    assert fig["alb_target_closed"] == fig["alb_elb_502"] == races + kills + late
    assert fig["alb_kill_timeout_s"] == 30.0
    # one definition: the tables count exactly what the figures count
    for name in ("ALB 5xx per target", "ALB 5xx per minute and target", "ALB 5xx per URL"):
        rows = tables[name]
        assert sum(r["keepalive_signature"] for r in rows) == races, name
        assert sum(r["timeout_kill"] for r in rows) == kills, name
        assert sum(r["closed_late"] for r in rows) == late, name
    (url,) = tables["ALB 5xx per URL"]
    assert (url["method"], url["url"]) == ("GET", "http://api.hakwonplus.com:80/api/fast")


def test_the_timeout_comes_from_the_run_or_the_caller(tmp_path):
    kinds = dict(keepalive_every=0, kill_every=100, kill_after_s=5.0)
    fig, _ = _closes(tmp_path / "a", **kinds)  # gunicorn's default 30 s: 5 s is a late close
    assert (fig["alb_timeout_kill"], fig["alb_closed_late"], fig["alb_keepalive_race"]) == (
        0,
        60,
        0,
    )
    fig, _ = _closes(tmp_path / "b", timeout=5, **kinds)
    assert (fig["alb_timeout_kill"], fig["alb_closed_late"], fig["alb_kill_timeout_s"]) == (
        60,
        0,
        5.0,
    )
    paths = synth.write_alb_logs(tmp_path / "c", 6000, files=1, **kinds)
    ds = dataset.open_alb_logs(paths, since=None, until=None)
    ds.meta["capacity"] = {"timeout": 5}  # what run.json says in a load run
    assert correlate.gunicorn_timeout_s(ds) == 5.0
    ds.close()


def test_knowledge_center_example_is_a_late_close(tmp_path):
    # KC 502 example: 4.205 s of target processing, then the close: not a race
    f = tmp_path / "kc.log"
    f.write_text(AWS_DOC_LINES["kc502"] + "\n")
    ds = dataset.open_alb_logs([f], since=None, until=None)
    fig, _ = correlate.compute(ds)
    ds.close()
    assert fig["alb_target_closed"] == fig["alb_closed_late"] == 1
    assert fig["alb_keepalive_race"] == 0


# ---- counts and messages of --alb-logs -----------------------------------------------------


def test_alb_logs_counts_one_malformed_line_once(tmp_path, capsys):
    logs = tmp_path / "logs"
    synth.write_alb_logs(logs, 3000, files=12, gz=False)
    lines = list(synth.alb_lines(31, t0=synth.T0 + 600))
    lines[10] = lines[10][: lines[10].index('"GET') + 10]  # cut inside the quoted request
    (logs / "zz-one-bad.log").write_text("\n".join(lines) + "\n")
    out = tmp_path / "rep"
    assert main(["analyze", "--alb-logs", str(logs), "--out", str(out)]) == 0
    parse = json.loads((out / "summary.json").read_text())["figures"]["parse"]["alb"]
    assert (parse["lines"], parse["malformed"], parse["parsed"]) == (3031, 1, 3030)
    assert "1 malformed of 3,031 lines" in capsys.readouterr().out


def test_corrupt_gz_is_named(tmp_path, capsys):
    logs = tmp_path / "logs"
    synth.write_alb_logs(logs, 3000, files=2)
    bad = (
        logs
        / "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20261126T1310Z_10.0.0.9_bad.log.gz"
    )
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"not a deflate stream" * 10)
    out = tmp_path / "rep"
    assert main(["analyze", "--alb-logs", str(logs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.replace("\n", "")  # rich wraps long lines
    assert "cannot be decompressed (corrupt .gz):" in printed and bad.name in printed
    data = json.loads((out / "summary.json").read_text())
    assert data["figures"]["parse"]["alb"]["unreadable_files"] == [str(bad)]
    assert any(bad.name in n and "cannot be decompressed" in n for n in data["figures"]["notes"])
    only = tmp_path / "only"
    only.mkdir()
    (only / bad.name).write_bytes(bad.read_bytes())
    assert main(["analyze", "--alb-logs", str(only), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert bad.name in err and "cannot be decompressed" in err and "no ALB log entry" not in err
    assert len(err.splitlines()) == 1


def test_an_object_downloaded_twice_is_read_once(tmp_path, capsys):
    """The bucket synced into two folders, and `gunzip -k` leaving a .log beside its .log.gz:
    each ALB object counts once (its name is unique by construction); files with other names are
    all read, however alike."""
    logs = tmp_path / "logs"
    objects = synth.write_alb_logs(logs / "sync1", 3000, files=2)
    (logs / "sync2").mkdir()
    again = logs / "sync2" / objects[0].name
    again.write_bytes(objects[0].read_bytes())
    plain = objects[1].with_suffix("")  # x.log beside x.log.gz
    plain.write_bytes(gzip.decompress(objects[1].read_bytes()))
    out = tmp_path / "rep"
    assert main(["analyze", "--alb-logs", str(logs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.replace("\n", "")
    assert "2 object(s) found twice, read once" in printed
    data = json.loads((out / "summary.json").read_text())
    parse = data["figures"]["parse"]["alb"]
    assert (parse["files"], parse["lines"], parse["parsed"]) == (2, 3000, 3000)
    assert sorted(parse["copies"]) == sorted([f"{objects[1]} = {plain}", f"{again} = {objects[0]}"])
    assert sum("is a copy of" in n for n in data["figures"]["notes"]) == 2
    # other names: two files, both read, even with equal content
    other = tmp_path / "other"
    other.mkdir()
    (other / "access.log.gz").write_bytes(objects[0].read_bytes())
    (other / "access.log").write_bytes(gzip.decompress(objects[0].read_bytes()))
    st = alb.load(dataset.connect(), alb.list_files(other))
    assert (st.files, st.parsed, st.copies) == (2, 3000, [])


def test_two_load_balancers_objects_are_refused_before_reading(tmp_path, capsys):
    """A region's prefix synced whole holds every balancer's objects: one diagnosis of two
    balancers' requests would mix two incidents, so analyze says which and how to pick one."""
    logs = tmp_path / "logs"
    (first,) = synth.write_alb_logs(logs, 200, files=1)
    other = first.name.replace(
        "app.my-loadbalancer.50dc6c495c0c9188", "app.admin-alb.0123456789abcdef"
    )
    (logs / other).write_bytes(first.read_bytes())
    assert alb.balancers([first, logs / other, logs / "notes.log"]) == [
        "app.admin-alb.0123456789abcdef (us-east-2)",
        "app.my-loadbalancer.50dc6c495c0c9188 (us-east-2)",
    ]
    assert main(["analyze", "--alb-logs", str(logs), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "the objects are of 2 load balancers (app.admin-alb.0123456789abcdef (us-east-2)" in err
    assert "--include '*_app.admin-alb.0123456789abcdef_*'" in err
    assert not (tmp_path / "rep").exists()


def test_no_entries_hint_names_the_window_only_when_given(tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "x.log").write_text("not an ALB log line\nnor this one\n")
    assert main(["analyze", "--alb-logs", str(logs), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no ALB log entry read (2 lines read, 2 malformed)" in err
    assert "--since" not in err and "--until" not in err
    args = ["analyze", "--alb-logs", str(logs), "--since", "2026-11-26T13:00Z"]
    assert main(args + ["--out", str(tmp_path / "b")]) == 2
    assert "--since/--until" in capsys.readouterr().err


@pytest.mark.parametrize(
    "line",
    [
        SPACE_LINE,
        ESCAPED_LINE,
        OPEN_USER_AGENT,
        CUT_IN_REQUEST,
        AWS_DOC_LINES["kc502"],
        GOOD.replace(REQUEST, '"- - -"'),
        GOOD.replace(REQUEST, '"GET /two-words"'),
        GOOD + ' TID_1 "-" "-" "-" 100.51.96.60 "-" "-" "x" y z',
        "garbage that is not a log line",
    ],
)
def test_python_and_duckdb_paths_read_a_line_alike(tmp_path, line):
    rec = alb.parse_line(line)
    f = tmp_path / "one.log"
    f.write_text(line + "\n")
    con = dataset.connect()
    st = alb.load(con, [f])
    assert (st.lines, st.parsed) == (1, int(rec is not None))
    if rec is not None:
        cols = ("request", "user_agent", "elb_status_code", "target_status_code", "ts")
        got = _rows(con, f"SELECT {', '.join(cols)} FROM alb")
        assert got == [{c: rec[c] for c in cols}]


def test_verdict_calls_timeout_kills_capacity_not_a_keepalive_race(tmp_path):
    """ALB 502s closed at gunicorn's --timeout are workers killed mid-request (capacity); only
    closes within a second of dispatch are the keep-alive signature."""
    from analysis import verdict

    fig, _ = _closes(tmp_path / "k", keepalive_every=0, kill_every=100)
    v = verdict.decide(fig, context="alb-logs")
    ids = [c.id for c in v.causes]
    assert "keepalive-race" not in ids and ids[0] == "capacity", (ids, v.headline)
    assert "keep-alive signature" not in v.headline
    fig, _ = _closes(tmp_path / "r", keepalive_every=100, kill_every=0)
    v = verdict.decide(fig, context="alb-logs")
    assert [c.id for c in v.causes][0] == "keepalive-race", v.headline


def test_timeout_kills_on_one_url_get_that_urls_fix_not_more_workers(tmp_path):
    """Workers killed at gunicorn's --timeout on one endpoint: more workers die the same way, so
    the fix names the URL and the timeout. Spread over many URLs, the sizing fix stays."""
    from analysis import verdict

    fig, _ = _closes(tmp_path / "one", keepalive_every=0, kill_every=100)
    cap = verdict.decide(fig, context="alb-logs").causes[0]
    assert cap.id == "capacity"
    assert cap.fix.startswith(
        "100.0% of the workers killed at gunicorn's --timeout (30 s) were serving "
        "http://api.hakwonplus.com:80/api/fast: make it answer within the timeout"
    )
    assert "idle_timeout.timeout_seconds" in cap.fix
    # the same kills, each on its own URL: no endpoint to name
    lines = list(synth.alb_lines(6000, keepalive_every=0, kill_every=100))
    lines = [
        ln.replace("/api/fast HTTP", f"/api/r{i} HTTP") if " 502 - " in ln else ln
        for i, ln in enumerate(lines)
    ]
    (tmp_path / "many").mkdir()
    (tmp_path / "many" / "a.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = dataset.open_alb_logs([tmp_path / "many" / "a.log"], since=None, until=None)
    try:
        fig, _ = correlate.compute(ds)
    finally:
        ds.close()
    cap = verdict.decide(fig, context="alb-logs").causes[0]
    assert cap.id == "capacity" and cap.fix.startswith("Size gunicorn for the load")


# ---- a malformed request is an entry, not a malformed line -----------------------------------

# How the ALB logs a request it could not parse (its own 400): no target, -1 times, the request
# field as read ("- http://host:80-/ "), no user agent.
BAD_REQUEST = (
    "http 2018-07-02T22:23:01.500000Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2818 -"
    ' -1 -1 -1 400 - 0 0 "- http://www.example.com:80-/ " "-" - - - "-" "-" "-" -'
    ' 2018-07-02T22:23:01.499000Z "-" "-" "-" "-" "-" "-" "-" "TID_1234abcd5678ef90"'
)
BAD_REQUEST_TS = 1530570181.5  # 2018-07-02T22:23:01.5Z; GOOD is at 22:23:00.186641Z


def test_malformed_request_is_kept_by_the_python_parser():
    rec = alb.parse_line(BAD_REQUEST)
    assert rec is not None
    assert (rec["elb_status_code"], rec["target_status_code"]) == (400, None)
    assert (rec["received_bytes"], rec["sent_bytes"]) == (0, 0)
    assert (
        rec["request_processing_time"],
        rec["target_processing_time"],
        rec["response_processing_time"],
    ) == (-1, -1, -1)
    assert rec["client_port"] == "192.168.131.39:2818" and rec["ts"] == BAD_REQUEST_TS
    assert rec["request"] == "- http://www.example.com:80-/ "
    assert (rec["method"], rec["url"], rec["http_version"]) == (None, None, None)


@pytest.mark.parametrize("path", ["fast", "line-by-line"])
def test_malformed_request_is_kept_by_the_duckdb_loader(tmp_path, path):
    lines = [GOOD, BAD_REQUEST, GOOD]
    if path == "line-by-line":  # a rejected line makes the loader re-read the object exactly
        lines.append(CUT_IN_REQUEST)
    f = tmp_path / "bad-request.log"
    f.write_text("\n".join(lines) + "\n")
    con = dataset.connect()
    st = alb.load(con, [f])
    assert (st.parsed, st.malformed) == (3, len(lines) - 3)
    rec = alb.parse_line(BAD_REQUEST)
    cols = ("client_port", "elb_status_code", "target_status_code", "received_bytes")
    cols += ("sent_bytes", "request_processing_time", "request", "ts")
    parts = ", ".join(f"{alb.request_part_sql('request', p)} AS {p}" for p in ("method", "url"))
    got = _rows(con, f"SELECT {', '.join(cols)}, {parts} FROM alb WHERE elb_status_code = 400")
    assert got == [{**{c: rec[c] for c in cols}, "method": None, "url": None}]
    window = alb.load(con, [f], since=BAD_REQUEST_TS - 0.5, until=BAD_REQUEST_TS + 0.5)
    assert window.parsed == 3
    in_window = con.execute("SELECT elb_status_code FROM alb").fetchall()
    assert in_window == [(400,)]


def test_malformed_request_counts_in_the_cli_window(tmp_path, capsys):
    f = tmp_path / "logs" / "bad-request.log"
    f.parent.mkdir()
    f.write_text("\n".join([GOOD, BAD_REQUEST]) + "\n")
    out = tmp_path / "rep"
    window = ["--since", "2018-07-02T22:23:01Z", "--until", "2018-07-02T22:23:02Z"]
    assert main(["analyze", "--alb-logs", str(f.parent), *window, "--out", str(out)]) == 0
    figures = json.loads((out / "summary.json").read_text())["figures"]
    assert figures["alb_entries"] == 1
    assert figures["parse"]["alb"]["malformed"] == 0
    assert "malformed of" not in capsys.readouterr().out


# ---- the typed fast reader parses exactly as text + TRY_CAST --------------------------------

# Values of the key fields that DuckDB's reader and TRY_CAST may read differently: the reader
# rejects some that TRY_CAST accepts (+1.5, 0x10, 1e2, a trailing blank inside quotes), which must
# send the object to the exact path, never change a value or a count.
AWKWARD = {
    2: ["2018-07-02T22:23:00Z", "2018-07-02T22:23:00.186641+02:00", "2018-07-02", "-", "x"],
    6: ["+1.5", "1e3", ".5", "inf", "-", "0x10", "1_000", '"1 "'],
    9: ["+200", "0x10", "1e2", "200.0", "-", "99999999999", "1_0"],
    10: ["+200", "0x10", "abc", "-"],
    22: ["2018-07-02T22:23:00Z", "-", "junk"],
}


def _with_field(line: str, pos: int, value: str) -> str:
    toks = alb.split_line(line)
    assert toks is not None
    raw = line.split(" ")  # the fields before the quoted request have no blanks
    if pos < 13:
        raw[pos - 1] = value
        return " ".join(raw)
    assert pos == 22 and toks[21].endswith("Z")
    return line.replace(f" {toks[21]} ", f" {value} ", 1)


@pytest.mark.parametrize("pos", sorted(AWKWARD))
def test_typed_reader_parses_as_text_and_try_cast(tmp_path, pos):
    lines = [GOOD] + [_with_field(GOOD, pos, v) for v in AWKWARD[pos]] + [GOOD]
    f = tmp_path / "awkward.log"
    f.write_text("\n".join(lines) + "\n")
    con = dataset.connect()
    st = alb.load(con, [f])
    names = ", ".join(n for n, _ in alb.FIELDS)
    got = _rows(con, f"SELECT {names}, ts FROM alb ORDER BY ALL")
    # the reference: every field read as text, then TRY_CAST (the reader before it typed fields)
    want = _rows(
        con,
        f"SELECT {names}, ts FROM ({alb._typed_select(alb._csv_source([f]))}) "
        "WHERE _ok ORDER BY ALL",
    )
    assert got == want and st.parsed == len(want)
    assert st.lines == len(lines) and st.malformed == len(lines) - len(want)


def test_fast_and_exact_paths_read_random_corruptions_alike(tmp_path):
    """Seeded random damage (a junk value in one of the first 12 fields, a line cut short) in
    8 files: the loader (fast reader, its rejects re-read) gives the table the line-by-line
    path gives, row for row."""
    import math
    import random

    rng = random.Random(7)
    base = list(synth.alb_lines(300, seed=11))
    junk = ["-", "+1", "0x1F", "1e2", "", "abc", '"q"', "2018-07-02T22:23:00Z", "nan", "1,5"]
    names = ", ".join(n for n, _ in alb.FIELDS)

    def rows(con, src):
        got = con.execute(f"SELECT {names}, ts FROM {src} ORDER BY ALL").fetchall()
        return [
            tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in r) for r in got
        ]

    for trial in range(8):
        lines = []
        for line in base:
            if rng.random() < 0.05:
                parts = line.split(" ")
                parts[rng.randrange(12)] = rng.choice(junk)
                line = " ".join(parts)
            if rng.random() < 0.01:
                line = line[: rng.randrange(len(line))]
            lines.append(line)
        f = tmp_path / f"damaged-{trial}.log"
        f.write_text("\n".join(lines) + "\n")
        con = dataset.connect()
        st = alb.load(con, [f])
        exact = f"({alb._typed_select(alb._line_source(alb.lines_source([f])))} WHERE _ok)"
        want = rows(con, exact)
        assert rows(con, "alb") == want, trial
        assert (st.lines, st.parsed) == (len([x for x in lines if x]), len(want)), trial
        con.close()
