"""HAProxy ``option httplog`` lines (the testbed's ALB stand-in), parsed in DuckDB with RE2.

Default httplog format (HAProxy 2.6):
``%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq
%hr %hs %{+Q}r``. A syslog header before the client address is tolerated (the regex is searched,
not anchored), as are captured headers ``{...}``. Timers are ms, -1 = the phase never completed.

The termination state ``%tsc`` is what matters for the verdict: first char = who ended the session
(``S`` server aborted/refused, ``s`` server-side timeout, ``C``/``c`` client, ``P`` proxy, ``-``
normal), second = the phase (``C`` connect, ``H`` waiting for headers, ``D`` data, ``Q`` queue).
The testbed maps HAProxy's own 503 (refused / connect timeout, ``SC``/``sC``) to the ALB's 502
page, so a 503 with a connect-phase termination is "proxy 502: could not connect".

HAProxy writes its timestamps in its local time without a zone; ``load`` assumes UTC and the
caller may pass ``tz_offset`` (seconds) to correct it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from analysis.parsers.common import ParseStats, lines_source, sql_str

PATTERN = (
    r"(\S+):(\d+) \[(\d+/\w+/\d+:\d+:\d+:\d+(?:\.\d+)?)\] (\S+) ([^/\s]+)/(\S+) "
    r"(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) (-?\d+) \+?(\d+) \S+ \S+ (\S{4}) "
    r"(\d+)/(\d+)/(\d+)/(\d+)/\+?(\d+) (\d+)/(\d+) (?:\{[^}]*\} )*\"([^\"]*)\"?"
)
NAMES = [
    "client",
    "client_port",
    "tstr",
    "frontend",
    "backend",
    "server",
    "t_req",
    "t_wait",
    "t_connect",
    "t_resp",
    "t_active",
    "status",
    "bytes",
    "term",
    "actconn",
    "feconn",
    "beconn",
    "srv_conn",
    "retries",
    "srv_queue",
    "backend_queue",
    "request",
]
_INTS = {
    "t_req",
    "t_wait",
    "t_connect",
    "t_resp",
    "t_active",
    "status",
    "actconn",
    "feconn",
    "beconn",
    "srv_conn",
    "retries",
    "srv_queue",
    "backend_queue",
}
# A line that starts like a request log entry but does not match is malformed (e.g. cut short);
# anything else (startup notices, "Server x is DOWN" alerts) is counted as "other".
_LOOKS_LIKE_ENTRY = r"\d+\.\d+\.\d+\.\d+:\d+ \[|\[[\da-f:]+\]:\d+ \[|^\S+:\d+ \["

_COLUMNS = (
    "ts DOUBLE, client VARCHAR, frontend VARCHAR, backend VARCHAR, server VARCHAR, "
    "t_req INTEGER, t_wait INTEGER, t_connect INTEGER, t_resp INTEGER, t_active INTEGER, "
    "status INTEGER, bytes BIGINT, term VARCHAR, actconn INTEGER, feconn INTEGER, beconn INTEGER, "
    "srv_conn INTEGER, retries INTEGER, srv_queue INTEGER, backend_queue INTEGER, "
    "method VARCHAR, path VARCHAR, file VARCHAR"
)


def load(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    *,
    table: str = "haproxy",
    tz_offset: float = 0.0,
) -> ParseStats:
    """Parse HAProxy httplog files into ``table``; counts malformed and other lines."""
    stats = ParseStats("haproxy", files=len(paths))
    con.execute(f"CREATE OR REPLACE TABLE {table} ({_COLUMNS})")
    if not paths:
        return stats
    names = "[" + ", ".join(sql_str(n) for n in NAMES) + "]"
    casts = ", ".join(
        f"TRY_CAST(NULLIF(r.{n}, '') AS INTEGER) AS {n}" if n in _INTS else f"r.{n} AS {n}"
        for n in NAMES
        if n not in ("tstr", "client_port", "request", "bytes")
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _hap AS
        SELECT line, filename,
               regexp_extract(line, {sql_str(PATTERN)}, {names}) AS r
        FROM {lines_source(paths)} WHERE line IS NOT NULL AND trim(line) <> ''"""
    )
    con.execute(
        f"""INSERT INTO {table} BY NAME
        SELECT epoch(try_strptime(r.tstr, ['%d/%b/%Y:%H:%M:%S.%g', '%d/%b/%Y:%H:%M:%S']))
                 + {float(tz_offset)!r} AS ts,
               {casts}, TRY_CAST(r.bytes AS BIGINT) AS bytes,
               split_part(r.request, ' ', 1) AS method, split_part(r.request, ' ', 2) AS path,
               filename AS file
        FROM _hap WHERE r.tstr <> ''"""
    )
    row = con.execute(
        f"""SELECT count(*),
                   count(*) FILTER (WHERE r.tstr <> ''),
                   count(*) FILTER (WHERE r.tstr = '' AND regexp_matches(line, {sql_str(_LOOKS_LIKE_ENTRY)}))
            FROM _hap"""
    ).fetchone()
    assert row is not None
    stats.lines, stats.parsed, stats.malformed = int(row[0]), int(row[1]), int(row[2])
    stats.other = stats.lines - stats.parsed - stats.malformed
    for (ex,) in con.execute(
        f"""SELECT line FROM _hap WHERE r.tstr = ''
            AND regexp_matches(line, {sql_str(_LOOKS_LIKE_ENTRY)}) LIMIT 3"""
    ).fetchall():
        stats.note_example(str(ex))
    con.execute("DROP TABLE _hap")
    return stats


def classify_sql(alias: str = "") -> str:
    """SQL CASE naming what a non-2xx HAProxy entry means, for the verdict's evidence."""
    a = f"{alias}." if alias else ""
    return f"""CASE
      WHEN {a}status IN (301, 302, 307, 308) AND {a}term LIKE 'LR%' THEN 'redirect'
      WHEN {a}server = '<NOSRV>' THEN 'no-server'
      WHEN {a}status IN (502, 503) AND {a}term LIKE 'SC%' THEN 'connect-refused'
      WHEN {a}status IN (502, 503, 504) AND {a}term LIKE 'sC%' THEN 'connect-timeout'
      WHEN {a}status = 502 AND ({a}term LIKE 'SH%' OR {a}term LIKE 'SD%') THEN 'server-closed'
      WHEN {a}status = 504 AND {a}term LIKE 'sH%' THEN 'server-timeout'
      WHEN {a}status = 502 AND {a}term LIKE 'PH%' THEN 'bad-response'
      WHEN {a}status >= 500 THEN 'other-5xx'
      ELSE 'ok' END"""
