"""ALB access logs (docs §2): every documented field, tolerant, streaming through DuckDB.

The entries are space-delimited with double-quoted fields, so DuckDB's parallel CSV reader parses
them (``.gz`` included) at >1 M lines/s. AWS appends new fields at the end and tells readers to
ignore unexpected trailing fields: we read a fixed 40 columns with null padding, name the 33
documented ones and drop the rest. Lines that do not parse (bad quoting, wrong types, too few
fields) are counted, never fatal. A truncated ``.gz`` (an object cut short) makes DuckDB fail the
whole file, so such files are re-read by the pure-Python line parser below up to the cut.

``-`` and ``-1`` keep their documented meaning: ``target_status_code`` is NULL when the target
sent no response (the ALB generated the status), and a processing time of ``-1`` means the ALB
could not dispatch the request or the target closed the connection (kept as -1, not NULL).
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

from analysis.parsers.common import ParseStats, sql_list

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
# line cut short. The request field must look like "METHOD URL PROTOCOL" (or "- - -").
_REQUIRED = 17
_REQUEST_SHAPE = r"\S+ \S+ \S+ ?"

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def _typed_select(src: str, keep: Sequence[tuple[str, str]] = FIELDS) -> str:
    """SELECT turning raw VARCHAR columns c1..c40 into typed, documented columns + ok flag.

    Timestamps become epoch seconds (float); validation always looks at the key fields, whatever
    subset of fields is kept.
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
        "AND (c10 = '-' OR TRY_CAST(c10 AS INTEGER) IS NOT NULL) AND c17 IS NOT NULL "
        f"AND regexp_full_match(c13, '{_REQUEST_SHAPE}')"
    )
    return (
        f"SELECT {', '.join(exprs)}, epoch(TRY_CAST(c2 AS TIMESTAMP)) AS ts, "
        f"({ok}) AS _ok, concat_ws(' ', c1, c2, c3, c4, c5, c6) AS _head FROM {src}"
    )


def _raw_source(paths: Sequence[Path | str]) -> str:
    cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(1, RAW_COLUMNS + 1))
    return (
        f"read_csv({sql_list(paths)}, columns={{{cols}}}, delim=' ', quote='\"', escape='\\', "
        "header=false, auto_detect=false, null_padding=true, strict_mode=false, "
        "ignore_errors=true, store_rejects=true, compression='auto', parallel=true)"
    )


def split_line(line: str) -> list[str]:
    """Tokenise one log entry: bare tokens as is, quoted fields without their quotes."""
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _TOKEN.finditer(line)]


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
    """Parse one entry into the documented fields (Python path: tests, truncated files).

    Returns None when the line is malformed (too few fields, unparseable time/status/times).
    """
    toks = split_line(line.rstrip("\r\n"))
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
    if not re.fullmatch(_REQUEST_SHAPE, rec["request"] or ""):
        return None
    if (
        rec["time"] is None
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
    rec["ts"] = rec["time"]
    return rec


def _python_rows(path: Path, stats: ParseStats) -> Iterator[dict[str, Any]]:
    """Stream a (possibly truncated) file line by line; a cut gzip stream ends the file, counted."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                stats.lines += 1
                rec = parse_line(line)
                if rec is None:
                    stats.malformed += 1
                    stats.note_example(line)
                else:
                    stats.parsed += 1
                    yield rec
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile):
        stats.truncated_files.append(str(path))


ARROW_SCHEMA = pa.schema(
    [
        (
            name,
            {
                "VARCHAR": pa.string(),
                "DOUBLE": pa.float64(),
                "INTEGER": pa.int32(),
                "BIGINT": pa.int64(),
                "TIMESTAMPTZ": pa.float64(),
            }[typ],
        )
        for name, typ in FIELDS
    ]
    + [("ts", pa.float64())]
)


def _arrow_batches(path: Path, stats: ParseStats, size: int = 50_000) -> Iterator[pa.RecordBatch]:
    buf: list[dict[str, Any]] = []
    for rec in _python_rows(path, stats):
        buf.append(rec)
        if len(buf) >= size:
            yield pa.RecordBatch.from_pylist(buf, schema=ARROW_SCHEMA)
            buf = []
    if buf:
        yield pa.RecordBatch.from_pylist(buf, schema=ARROW_SCHEMA)


def list_files(root: Path) -> list[Path]:
    """ALB log objects under a folder (original S3 keys keep their .log.gz names)."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith((".log", ".gz")))


# The fields the verdict and the per-target/minute tables use (long text fields left out: reading
# all 33 costs twice the time on a 2-core machine). ``load(fields=None)`` keeps every field.
ANALYSIS_FIELDS = (
    "type",
    "time",
    "elb",
    "client_port",
    "target_port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "target_group_arn",
    "actions_executed",
    "error_reason",
    "conn_trace_id",
)


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
    """
    stats = ParseStats("alb", files=len(paths))
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

    def ingest(batch: Sequence[Path]) -> None:
        con.execute(
            f"CREATE OR REPLACE TABLE _alb_batch AS {_typed_select(_raw_source(batch), keep)}"
        )
        row = con.execute("SELECT count(*), count(*) FILTER (WHERE _ok) FROM _alb_batch").fetchone()
        assert row is not None
        total, good = int(row[0]), int(row[1])
        rejects = con.execute("SELECT count(*) FROM reject_errors").fetchone()
        nrej = int(rejects[0]) if rejects else 0
        stats.lines += total + nrej
        stats.parsed += good
        stats.malformed += total - good + nrej
        for (ex,) in con.execute("SELECT _head FROM _alb_batch WHERE NOT _ok LIMIT 3").fetchall():
            stats.note_example(str(ex))
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
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

    try:
        ingest(paths)
        return stats
    except duckdb.Error:
        # One bad object (typically a truncated .gz) fails the scan: retry file by file.
        stats.lines = stats.parsed = stats.malformed = 0
        stats.examples.clear()
        con.execute("DROP TABLE IF EXISTS _alb_batch")
        con.execute(f"DELETE FROM {table}")
        first[0] = False
    for p in paths:
        try:
            ingest([p])
        except duckdb.Error:
            con.execute("DROP TABLE IF EXISTS _alb_batch")
            reader = pa.RecordBatchReader.from_batches(ARROW_SCHEMA, _arrow_batches(p, stats))
            con.register("_alb_py", reader)
            con.execute(f"INSERT INTO {table} SELECT {names}, ts FROM _alb_py WHERE true{window}")
            con.unregister("_alb_py")
    return stats
