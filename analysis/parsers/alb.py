"""ALB access logs (docs §2): every documented field, tolerant, streaming through DuckDB.

The entries are space-delimited with double-quoted fields, so DuckDB's parallel CSV reader parses
them (``.gz`` included) at >1 M lines/s. AWS appends new fields at the end and tells readers to
ignore unexpected trailing fields: we read a fixed 40 columns with null padding, name the 33
documented ones and drop the rest. Lines that do not parse (bad quoting, wrong types, too few
fields) are counted one line each, never fatal: an object with a line whose quotes do not
balance is re-read line by line (one physical line = one row, tokenised by TOKEN_PATTERN), and an
object DuckDB cannot read (a ``.gz`` cut short or corrupt) is streamed by Python up to the cut.

Text fields are kept as logged (the ALB's ``\\xHH`` escapes included); ``decode`` and
``decode_sql`` decode them, identically. ``-`` and ``-1`` keep their documented meaning:
``target_status_code`` is NULL when the target sent no response (the ALB generated the status),
and a processing time of ``-1`` means the ALB could not dispatch the request or the target closed
the connection (kept as -1, not NULL). ``target_closed_kind_sql`` is the one definition of the
keep-alive signature and of the two target closes it must not count.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from analysis.parsers.common import ParseStats, lines_source, sql_list, sql_str

# (name, SQL type) in log order, as documented; quoted fields are unquoted by the reader.
FIELDS: list[tuple[str, str]] = [
    ("type", "VARCHAR"),
    ("time", "TIMESTAMPTZ"),
    ("elb", "VARCHAR"),
    ("client_port", "VARCHAR"),
    ("target_port", "VARCHAR"),
    ("request_processing_time", "DOUBLE"),
    ("target_processing_time", "DOUBLE"),
    ("response_processing_time", "DOUBLE"),
    ("elb_status_code", "INTEGER"),
    ("target_status_code", "INTEGER"),
    ("received_bytes", "BIGINT"),
    ("sent_bytes", "BIGINT"),
    ("request", "VARCHAR"),
    ("user_agent", "VARCHAR"),
    ("ssl_cipher", "VARCHAR"),
    ("ssl_protocol", "VARCHAR"),
    ("target_group_arn", "VARCHAR"),
    ("trace_id", "VARCHAR"),
    ("domain_name", "VARCHAR"),
    ("chosen_cert_arn", "VARCHAR"),
    ("matched_rule_priority", "VARCHAR"),
    ("request_creation_time", "TIMESTAMPTZ"),
    ("actions_executed", "VARCHAR"),
    ("redirect_url", "VARCHAR"),
    ("error_reason", "VARCHAR"),
    ("target_port_list", "VARCHAR"),
    ("target_status_code_list", "VARCHAR"),
    ("classification", "VARCHAR"),
    ("classification_reason", "VARCHAR"),
    ("conn_trace_id", "VARCHAR"),
    ("transformed_host", "VARCHAR"),
    ("transformed_uri", "VARCHAR"),
    ("request_transform_status", "VARCHAR"),
]
RAW_COLUMNS = 40  # documented fields + room for fields AWS adds later (ignored)
# Through target_group_arn (the oldest ALB format already had 18 fields): anything shorter is a
# line cut short.
_REQUIRED = 17
# The request field: method = first word, version = last word, URL = everything between. The ALB
# keeps a URL with unencoded spaces as the client sent it (classification_reason SpaceInUri).
# "- - -" (no request read) fits too. A request field of any other shape (a malformed request,
# logged as read, e.g. "- http://host:80-/ ") is an entry all the same, method and URL unknown
# (NULL): its status, bytes and times count.
REQUEST_PATTERN = r"(\S+) (.+) (\S+) ?"
# One log entry, field by field: a double-quoted field (the ALB never writes a raw '"' inside one:
# it writes \x22) or a bare token. The same pattern tokenises on the Python and the DuckDB path.
TOKEN_PATTERN = r'"[^"]*"|[^ ]+'
_TOKEN = re.compile(TOKEN_PATTERN)
# The ALB writes '"' as \x22, '\' as \x5c and non-ASCII bytes as \xHH. Text is stored raw (as
# logged); decode() / decode_sql() turn it into text the same way (see their docstrings).
_ESCAPED = re.compile(r"(?:\\x[0-9A-Fa-f]{2}|[\x00-\x5b\x5d-\x7f])*")
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")


def decode(raw: str | None) -> str | None:
    """Decode the ALB's ``\\xHH`` escapes (bytes, then UTF-8); same result as ``decode_sql``.

    Text that is not entirely ASCII + ``\\xHH`` escapes, or whose bytes are not valid UTF-8, is
    returned unchanged (raw): a half-decoded string would be worse than the logged one.
    """
    if raw is None or "\\" not in raw:
        return raw
    if not _ESCAPED.fullmatch(raw):
        return raw
    out, pos = bytearray(), 0
    for m in _ESCAPE.finditer(raw):
        out += raw[pos : m.start()].encode("ascii")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += raw[pos:].encode("ascii")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def decode_sql(expr: str) -> str:
    """The SQL form of ``decode``: DuckDB casts ``\\xHH`` to bytes in VARCHAR -> BLOB."""
    return (
        f"CASE WHEN contains({expr}, '\\') "
        f"THEN coalesce(try(decode(TRY_CAST({expr} AS BLOB))), {expr}) ELSE {expr} END"
    )


def split_request(request: str | None) -> tuple[str, str, str] | None:
    """(method, URL, version) of a raw request field, or None when it has no such shape."""
    m = re.fullmatch(REQUEST_PATTERN, request or "")
    return (m.group(1), m.group(2), m.group(3)) if m else None


def request_part_sql(expr: str, part: str) -> str:
    """The SQL form of ``split_request``: part is 'method', 'url' or 'version'."""
    group = {"method": 1, "url": 2, "version": 3}[part]
    return f"nullif(regexp_extract({expr}, '^{REQUEST_PATTERN}$', {group}), '')"


def _unquote_sql(tok: str) -> str:
    return (
        f"CASE WHEN length({tok}) >= 2 AND starts_with({tok}, '\"') AND ends_with({tok}, '\"') "
        f"THEN {tok}[2:-2] ELSE {tok} END"
    )


def _typed_select(
    src: str, keep: Sequence[tuple[str, str]] = FIELDS, *, typed: bool = False
) -> str:
    """SELECT turning raw columns c1..c40 into typed, documented columns + ok flag.

    Timestamps become epoch seconds (float); validation always looks at the key fields, whatever
    subset of fields is kept. ``typed``: the source already read the key fields as their types
    (``_csv_source(typed=True)``: the TRY_CASTs below are then no-ops, and a NULL key field is an
    empty or missing one).
    """
    pos = {name: i for i, (name, _t) in enumerate(FIELDS, start=1)}
    exprs = []
    for name, typ in keep:
        col = f"c{pos[name]}"
        if name == "target_status_code":
            exprs.append(
                f"CASE WHEN {col} = '-' THEN NULL ELSE TRY_CAST({col} AS INTEGER) END AS {name}"
            )
        elif name == "target_port":
            exprs.append(f"NULLIF({col}, '-') AS {name}")
        elif typ == "TIMESTAMPTZ":
            exprs.append(f"epoch(TRY_CAST({col} AS TIMESTAMP)) AS {name}")
        elif typ == "VARCHAR":
            exprs.append(f"{col} AS {name}")
        else:
            exprs.append(f"TRY_CAST({col} AS {typ}) AS {name}")
    ok = (
        "TRY_CAST(c2 AS TIMESTAMP) IS NOT NULL AND TRY_CAST(c9 AS INTEGER) IS NOT NULL "
        "AND TRY_CAST(c6 AS DOUBLE) IS NOT NULL AND TRY_CAST(c7 AS DOUBLE) IS NOT NULL "
        "AND TRY_CAST(c8 AS DOUBLE) IS NOT NULL AND c13 IS NOT NULL "
        "AND (c10 = '-' OR TRY_CAST(c10 AS INTEGER) IS NOT NULL) AND c17 IS NOT NULL"
    )
    # the head of a malformed line, for the examples (a typed time in the ALB's own form)
    head = f"c1, strftime(c2, '{_ALB_TIME}'), c3, c4, c5, c6" if typed else "c1, c2, c3, c4, c5, c6"
    return (
        f"SELECT {', '.join(exprs)}, epoch(TRY_CAST(c2 AS TIMESTAMP)) AS ts, "
        f"({ok}) AS _ok, "
        # NULL (nothing built) on good lines
        f"CASE WHEN ({ok}) THEN NULL ELSE concat_ws(' ', {head}) END AS _head "
        f"FROM {src}"
    )


# The key fields the fast reader types itself (their values, not VARCHAR): a value that does not
# cast is a CAST reject, and the object is read again as text (``load``), so a line parses exactly
# as with TRY_CAST on text. Every other field stays text (TRY_CAST: a bad byte count is NULL, not
# a malformed line).
_READER_TYPES = {2: "TIMESTAMP", 6: "DOUBLE", 7: "DOUBLE", 8: "DOUBLE", 9: "INTEGER"}
_ALB_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _csv_source(paths: Sequence[Path | str], *, typed: bool = False) -> str:
    """The fast path: DuckDB's parallel CSV reader, fields split and unquoted by the reader.

    No escape character (the ALB's ``\\x22`` stays as logged). ``strict_mode``: a line whose
    quotes do not balance is rejected instead of being read leniently; leniently, its open quote
    ran on into the next line, silently merging the two (only when one thread read the whole
    object, i.e. depending on files vs threads). Objects with a rejected line are re-read line
    by line (``_line_source``). ``typed``: the key fields are read as their types
    (``_READER_TYPES``): about a third cheaper than text + TRY_CAST.
    """
    types = _READER_TYPES if typed else {}
    cols = ", ".join(f"'c{i}': '{types.get(i, 'VARCHAR')}'" for i in range(1, RAW_COLUMNS + 1))
    return (
        f"read_csv({sql_list(paths)}, columns={{{cols}}}, delim=' ', quote='\"', escape='', "
        "header=false, auto_detect=false, null_padding=true, strict_mode=true, "
        "ignore_errors=true, store_rejects=true, compression='auto', parallel=true)"
    )


def _line_source(lines: str) -> str:
    """The exact path: one physical line = one row, tokenised by TOKEN_PATTERN (as split_line).

    ``lines`` is a relation with a VARCHAR column ``line``. Empty lines are skipped, as the CSV
    reader skips them (a line of blanks is a malformed line on both paths).
    """
    cols = ", ".join(f"{_unquote_sql(f'_t[{i}]')} AS c{i}" for i in range(1, RAW_COLUMNS + 1))
    return (
        f"(SELECT {cols} FROM (SELECT regexp_extract_all(rtrim(line, chr(13)), "
        f"{sql_str(TOKEN_PATTERN)}) AS _t FROM {lines} "
        "WHERE line IS NOT NULL AND rtrim(line, chr(13)) <> ''))"
    )


def split_line(line: str) -> list[str]:
    """Tokenise one log entry: bare tokens as is, quoted fields without their quotes."""
    return [
        t[1:-1] if len(t) >= 2 and t[0] == '"' and t[-1] == '"' else t for t in _TOKEN.findall(line)
    ]


def _to_ts(s: str | None) -> float | None:
    if not s or s == "-":
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _num(s: str | None, cast: type) -> Any:
    try:
        return cast(s) if s not in (None, "-") else None
    except ValueError:
        return None


def parse_line(line: str) -> dict[str, Any] | None:
    """Parse one entry into the documented fields, text raw as logged (``decode`` decodes it),
    plus ``method``, ``url`` and ``http_version`` split from the request.

    Returns None when the line is malformed (too few fields, unparseable time/status/times). A
    request field that is not "METHOD URL VERSION" (the ALB logs a malformed request as it read
    it) is kept: ``method``, ``url`` and ``http_version`` are None (unknown).
    ``load`` reads files through DuckDB with the same tokens, checks and types.
    """
    toks: list[str | None] = list(split_line(line.rstrip("\r\n")))
    if not toks or len(toks) < _REQUIRED:
        return None
    toks = toks[: len(FIELDS)] + [None] * (len(FIELDS) - min(len(toks), len(FIELDS)))
    rec: dict[str, Any] = {}
    for (name, typ), tok in zip(FIELDS, toks, strict=True):
        if name == "target_status_code":
            rec[name] = _num(tok, int)
        elif name == "target_port":
            rec[name] = None if tok == "-" else tok
        elif typ == "TIMESTAMPTZ":
            rec[name] = _to_ts(tok)
        elif typ == "DOUBLE":
            rec[name] = _num(tok, float)
        elif typ in ("INTEGER", "BIGINT"):
            rec[name] = _num(tok, int)
        else:
            rec[name] = tok
    bad_target = toks[9] not in ("-", None) and rec["target_status_code"] is None
    if (
        rec["request"] is None
        or rec["time"] is None
        or rec["elb_status_code"] is None
        or None
        in (
            rec["request_processing_time"],
            rec["target_processing_time"],
            rec["response_processing_time"],
        )
        or bad_target
    ):
        return None
    # A request the ALB could not parse (a malformed request: its 400 is logged with the raw
    # request field, e.g. "- http://host:80-/ ") is still an entry: method/URL/version unknown.
    rec["method"], rec["url"], rec["http_version"] = split_request(rec["request"]) or (None,) * 3
    rec["ts"] = rec["time"]
    return rec


def _python_lines(path: Path, stats: ParseStats) -> Iterator[pa.RecordBatch]:
    """Lines of an object DuckDB cannot read, streamed by Python up to where it breaks.

    A gzip stream cut short keeps its lines before the cut (``truncated_files``); one that yields
    no line at all cannot be decompressed (``unreadable_files``: corrupt, or not gzip at all).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    buf: list[str] = []
    seen = False
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                seen = True
                buf.append(line.rstrip("\n"))
                if len(buf) >= 50_000:
                    yield pa.record_batch({"line": buf})
                    buf = []
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile):
        (stats.truncated_files if seen else stats.unreadable_files).append(str(path))
    if buf:
        yield pa.record_batch({"line": buf})


_LINES_SCHEMA = pa.schema([("line", pa.string())])


def list_files(root: Path) -> list[Path]:
    """ALB log objects under a folder (original S3 keys keep their .log.gz names)."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith((".log", ".gz")))


# An ALB log object's name, unique by construction (docs: account, region, load balancer, end time,
# address, random string): the same name twice is one object downloaded twice.
# (probes/aws/accesslogs.py reads the S3 keys; analysis may not import probes)
_OBJECT_NAME = re.compile(
    r"^\d{12}_elasticloadbalancing_(?P<region>[a-z0-9-]+)_(?P<lb>[^_]+)_\d{8}T\d{4}Z_"
    r"[^_]+_[^_]+\.log$"
)


def without_copies(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """The objects to read, and the (copy, original) pairs left out: an ALB object name found
    twice, with or without its .gz (the bucket synced into two folders, or `gunzip -k` leaving
    the .log beside its .log.gz). Files with other names are all read, however alike."""
    kept: list[Path] = []
    first: dict[str, Path] = {}
    copies: list[tuple[Path, Path]] = []
    for p in paths:
        name = p.name.removesuffix(".gz")
        if not _OBJECT_NAME.match(name):
            kept.append(p)
        elif name in first:
            copies.append((p, first[name]))
        else:
            first[name] = p
            kept.append(p)
    return kept, copies


def balancers(paths: Sequence[Path]) -> list[str]:
    """The load balancers the ALB object names belong to ("app.NAME.ID (region)"), sorted; files
    with other names name none."""
    found = {
        f"{m['lb']} ({m['region']})"
        for p in paths
        if (m := _OBJECT_NAME.match(p.name.removesuffix(".gz")))
    }
    return sorted(found)


# The fields the figures, the verdict and the ALB tables read (analysis/correlate.py,
# alb_patterns.py, targets.py, release.py, pipeline.alb_tables): every column stored costs parse
# time, so a field no figure reads is left out (``ts`` is always added; ``load(fields=None)``
# keeps every field). A figure that reads another field adds it here.
ANALYSIS_FIELDS = (
    "target_port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "request",  # method and URL of the 5xx (tables, the 504s' top URL)
    "request_creation_time",  # with ts: how long after dispatch a target closed (closed_after)
    "actions_executed",  # "fixed-response": a listener rule's own answer, not a failed target
)
# The ALB answered by a listener rule (a maintenance page, a default action no rule matched past),
# not because a target failed: its 5xx are configuration (shared/reference/aws-alb.md, §2).
FIXED_RESPONSE_SQL = "contains(coalesce(actions_executed, ''), 'fixed-response')"


def load(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    *,
    table: str = "alb",
    since: float | None = None,
    until: float | None = None,
    fields: Sequence[str] | None = None,
) -> ParseStats:
    """Parse ALB log files into ``table`` (one row per well-formed entry); return counts.

    ``fields`` picks the documented fields to keep (all by default); ``ts`` is always added.
    A malformed line is one line, whatever the number of objects and threads: objects in which
    the fast CSV reader rejects a line are re-read line by line, and objects DuckDB cannot read
    at all (a cut or corrupt ``.gz``) are streamed by Python up to where they break.
    """
    paths, copies = without_copies(paths)
    stats = ParseStats("alb", files=len(paths), copies=[f"{c} = {o}" for c, o in copies])
    keep = [(n, t) for n, t in FIELDS if fields is None or n in fields]
    cols_sql = ", ".join(f"{n} {'DOUBLE' if t == 'TIMESTAMPTZ' else t}" for n, t in keep)
    con.execute(f"CREATE OR REPLACE TABLE {table} ({cols_sql}, ts DOUBLE)")
    if not paths:
        return stats
    window = ""
    if since is not None:
        window += f" AND ts >= {float(since)!r}"
    if until is not None:
        window += f" AND ts < {float(until)!r}"
    names = ", ".join(n for n, _ in keep)
    first = [True]

    def commit() -> None:
        """Count the rows of _alb_batch, then move its good rows in the window into the table."""
        row = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE _ok), min(ts) FILTER (WHERE _ok), "
            "max(ts) FILTER (WHERE _ok) FROM _alb_batch"
        ).fetchone()
        assert row is not None
        total, good = int(row[0]), int(row[1])
        if row[2] is not None:
            lo, hi = float(row[2]), float(row[3])
            stats.first_ts = lo if stats.first_ts is None else min(stats.first_ts, lo)
            stats.last_ts = hi if stats.last_ts is None else max(stats.last_ts, hi)
        stats.lines += total
        stats.parsed += good
        stats.malformed += total - good
        for (ex,) in con.execute("SELECT _head FROM _alb_batch WHERE NOT _ok LIMIT 3").fetchall():
            stats.note_example(str(ex))
        if first[0]:
            # The usual case (one scan of all files): keep the batch as the table, no copy.
            first[0] = False
            con.execute(f"DELETE FROM _alb_batch WHERE NOT (_ok{window})")
            con.execute("ALTER TABLE _alb_batch DROP COLUMN _ok")
            con.execute("ALTER TABLE _alb_batch DROP COLUMN _head")
            con.execute(f"DROP TABLE {table}")
            con.execute(f"ALTER TABLE _alb_batch RENAME TO {table}")
        else:
            con.execute(f"INSERT INTO {table} SELECT {names}, ts FROM _alb_batch WHERE _ok{window}")
            con.execute("DROP TABLE _alb_batch")

    def batch(src: str, *, typed: bool = False) -> None:
        sel = _typed_select(src, keep, typed=typed)
        con.execute(f"CREATE OR REPLACE TABLE _alb_batch AS {sel}")

    def fast(files: Sequence[Path]) -> list[Path]:
        """CSV-read ``files``; return those with a rejected line (left out, to be re-read)."""
        try:
            batch(_csv_source(files, typed=True), typed=True)
            try:
                rejected = {
                    str(r[0])
                    for r in con.execute(
                        "SELECT DISTINCT s.file_path FROM reject_errors e "
                        "JOIN reject_scans s USING (scan_id, file_id)"
                    ).fetchall()
                }
            except duckdb.CatalogException:  # no reject tables: nothing was rejected
                rejected = set()
        finally:
            con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        if not rejected:
            commit()
            return []
        con.execute("DROP TABLE _alb_batch")
        # (a rejected path DuckDB spelled differently: re-read every object line by line)
        redo = [p for p in files if str(p) in rejected] or list(files)
        rest = [p for p in files if p not in redo]
        return redo + (fast(rest) if rest else [])

    def exact(p: Path) -> None:
        try:
            batch(_line_source(lines_source([p])))
        except duckdb.Error:
            con.execute("DROP TABLE IF EXISTS _alb_batch")
            reader = pa.RecordBatchReader.from_batches(_LINES_SCHEMA, _python_lines(p, stats))
            con.register("_alb_py_lines", reader)
            try:
                batch(_line_source("_alb_py_lines"))
            finally:
                con.unregister("_alb_py_lines")
        commit()

    try:
        redo = fast(paths)
    except duckdb.Error:
        # One object DuckDB cannot read (typically a truncated .gz) fails the scan: file by file.
        con.execute("DROP TABLE IF EXISTS _alb_batch")
        redo = []
        for p in paths:
            try:
                redo += fast([p])
            except duckdb.Error:
                con.execute("DROP TABLE IF EXISTS _alb_batch")
                redo.append(p)
    for p in redo:
        exact(p)
    return stats


# ---- Target closed the connection: keep-alive race, worker killed at the timeout, or later ----
# An ALB 502 with no target status, dispatched (request_processing_time >= 0) and no response
# (response_processing_time -1): the target closed the connection with the request outstanding.
TARGET_CLOSED_SQL = (
    "(elb_status_code = 502 AND target_status_code IS NULL "
    "AND request_processing_time >= 0 AND response_processing_time = -1)"
)
# An ALB 502 with -1/-1/-1: no connection to the target (refused, reset, unreachable).
CONNECT_FAILED_SQL = (
    "(elb_status_code = 502 AND target_status_code IS NULL AND request_processing_time = -1 "
    "AND target_processing_time = -1 AND response_processing_time = -1)"
)
# A keep-alive race closes a reused connection at once: the FIN/RST was already on its way (a
# round trip in the VPC, milliseconds). A close after a tenth of a second or more came while the
# target worked on the request: a crash, a kill, a restart (closed-late), not a race.
RACE_MAX_S = 0.1
# gunicorn kills a silent worker once `timeout` has passed (its arbiter looks about once a second)
# and the connection closes then: closed [timeout - 1 s, timeout + 3 s] after dispatch.
KILL_WINDOW_S = (-1.0, 3.0)
GUNICORN_DEFAULT_TIMEOUT_S = 30.0  # gunicorn's --timeout default, when the run did not say


def closed_after_sql() -> str:
    """Seconds from dispatch to the close. ``target_processing_time`` when the ALB recorded it;
    when it is -1, the entry's ``time`` (response to the client) minus ``request_creation_time``
    (request received) minus ``request_processing_time`` (time to dispatch)."""
    return (
        "CASE WHEN target_processing_time >= 0 THEN target_processing_time "
        "ELSE greatest(0, ts - request_creation_time - request_processing_time) END"
    )


def target_closed_kind_sql(timeout_s: float | None = None) -> str:
    """'keepalive-race', 'timeout-kill' or 'closed-late' for a target-closed 502, else NULL.

    A race is closed within RACE_MAX_S of dispatch; a kill at gunicorn's ``timeout_s`` (default
    30 s) is capacity, not a race; anything else closed after seconds of processing (a crash, an
    OOM kill, a restart) is 'closed-late'. Lines without ``request_creation_time`` whose
    target time is -1 have no elapsed time and count as 'closed-late', never as a race.
    """
    t = float(timeout_s or GUNICORN_DEFAULT_TIMEOUT_S)
    lo, hi = t + KILL_WINDOW_S[0], t + KILL_WINDOW_S[1]
    after = closed_after_sql()
    return (
        f"CASE WHEN {TARGET_CLOSED_SQL} THEN CASE "
        f"WHEN {after} < {RACE_MAX_S!r} THEN 'keepalive-race' "
        f"WHEN {after} BETWEEN {lo!r} AND {hi!r} THEN 'timeout-kill' "
        "ELSE 'closed-late' END END"
    )
