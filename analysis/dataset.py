"""Open a run directory (or a folder of ALB logs) as DuckDB tables/views, whatever subset exists.

Parquet tables become views over their part globs (streamed, never loaded whole); text logs are
parsed into DuckDB tables. ``Dataset.present`` says which inputs exist, ``parse_stats`` how the
text logs parsed; the verdict names what was missing instead of guessing.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from analysis.parsers import alb, gunicorn, haproxy
from analysis.parsers.common import ParseStats, sql_list, sql_str
from core import worker_parts
from core.errors import AlbprobeError
from core.rundir import SCHEMAS, RunDir

TABLES = ("requests", "health", "metrics", "events", "schedule")
EVENTS_COLUMNS = "ts DOUBLE, source VARCHAR, kind VARCHAR, detail VARCHAR, pid BIGINT"


@dataclass
class Dataset:
    con: duckdb.DuckDBPyConnection
    path: Path | None
    meta: dict[str, Any] = field(default_factory=dict)
    present: dict[str, bool] = field(default_factory=dict)
    parse_stats: dict[str, ParseStats] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # data-quality remarks for the report
    bad_parts: list[str] = field(default_factory=list)

    def count(self, table: str) -> int:
        if not self.present.get(table):
            return 0
        row = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.con.close()


def connect(memory_limit: str = "1500MB") -> duckdb.DuckDBPyConnection:
    """One DuckDB connection with bounded memory (spills to a temp dir beyond it)."""
    con = duckdb.connect(":memory:")
    spill = Path(tempfile.gettempdir()) / "albprobe-duckdb"
    spill.mkdir(exist_ok=True)
    con.execute(f"SET memory_limit={sql_str(memory_limit)}")
    con.execute(f"SET temp_directory={sql_str(str(spill))}")
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET TimeZone='UTC'")
    return con


def _empty_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    cols = ", ".join(f"CAST(NULL AS {_duck_type(f.type)}) AS {f.name}" for f in SCHEMAS[table])
    con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} WHERE false")


def _duck_type(t: Any) -> str:
    s = str(t)
    return {
        "double": "DOUBLE",
        "string": "VARCHAR",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
    }.get(s, "VARCHAR")


def _parquet_view(ds: Dataset, table: str) -> None:
    """A view over the table's parts; unreadable parts (a crash mid-run) are skipped, counted."""
    assert ds.path is not None
    parts = sorted((ds.path / table).glob("*.parquet"))
    good: list[Path] = []
    for p in parts:
        try:
            ds.con.execute(f"SELECT 1 FROM parquet_metadata({sql_str(str(p))}) LIMIT 1")
            good.append(p)
        except duckdb.Error:
            ds.bad_parts.append(str(p))
    if not good:
        _empty_view(ds.con, table)
        ds.present[table] = False
        return
    # union_by_name: parts written by an older/newer writer may lack or add columns.
    ds.con.execute(
        f"CREATE OR REPLACE VIEW _{table}_raw AS SELECT * FROM "
        f"read_parquet({sql_list(good)}, union_by_name=true)"
    )
    have = {r[0] for r in ds.con.execute(f"DESCRIBE _{table}_raw").fetchall()}
    cols = ", ".join(
        (
            f"CAST({f.name} AS {_duck_type(f.type)}) AS {f.name}"
            if f.name in have
            else f"CAST(NULL AS {_duck_type(f.type)}) AS {f.name}"
        )
        for f in SCHEMAS[table]
    )
    ds.con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} FROM _{table}_raw")
    ds.present[table] = True
    ds.present[table] = ds.count(table) > 0


def _haproxy_offset(ds: Dataset) -> None:
    """HAProxy logs local time without a zone: realign whole-quarter-hour offsets to the run."""
    start, end = ds.meta.get("started_at"), ds.meta.get("ended_at")
    if not isinstance(start, int | float):
        return
    end = end if isinstance(end, int | float) else start
    row = ds.con.execute("SELECT median(ts) FROM haproxy").fetchone()
    if not row or row[0] is None:
        return
    med = float(row[0])
    mid = (float(start) + float(end)) / 2
    if start - 600 <= med <= end + 600:
        return
    offset = round((mid - med) / 900.0) * 900.0
    if offset:
        ds.con.execute(f"UPDATE haproxy SET ts = ts + {offset!r}")
        ds.notes.append(
            f"HAProxy timestamps shifted by {offset / 3600:+.2f} h to match the run window "
            "(HAProxy logs local time without a zone)."
        )


def _load_events(ds: Dataset) -> None:
    """events = the run's events table + events parsed from logs/gunicorn*.log (deduplicated)."""
    con = ds.con
    con.execute(f"CREATE OR REPLACE TABLE events_all ({EVENTS_COLUMNS})")
    if ds.present.get("events"):
        con.execute("INSERT INTO events_all SELECT ts, source, kind, detail, pid FROM events")
    logs = ds.path / "logs" if ds.path else None
    glog = sorted(logs.glob("gunicorn*.log")) if logs and logs.is_dir() else []
    ds.present["gunicorn_log"] = bool(glog)
    if glog:
        evs, stats = gunicorn.load(glog)
        ds.parse_stats["gunicorn"] = stats
        if evs:
            import pyarrow as pa

            tbl = pa.table(
                {
                    "ts": [e.ts for e in evs],
                    "source": ["gunicorn"] * len(evs),
                    "kind": [e.kind for e in evs],
                    "detail": [e.detail for e in evs],
                    "pid": [e.pid for e in evs],
                }
            )
            con.register("_glog", tbl)
            # The recorder may already have copied the same lines into events: skip duplicates
            # (same kind and pid within 2 s; the log has 1-s resolution).
            con.execute(
                """INSERT INTO events_all SELECT g.ts, g.source, g.kind, g.detail, g.pid
                   FROM _glog g WHERE NOT EXISTS (
                     SELECT 1 FROM events e WHERE e.source = 'gunicorn' AND e.kind = g.kind
                       AND coalesce(e.pid, -1) = coalesce(g.pid, -1) AND abs(e.ts - g.ts) < 2)"""
                if ds.present.get("events")
                else "INSERT INTO events_all SELECT * FROM _glog"
            )
            con.unregister("_glog")
    row = con.execute(
        "SELECT count(*) FILTER (WHERE source = 'gunicorn') FROM events_all"
    ).fetchone()
    ds.present["gunicorn_events"] = bool(row and row[0])


def open_tables(
    path: str | Path, tables: tuple[str, ...] = TABLES, *, memory_limit: str = "1500MB"
) -> Dataset:
    """Only the run directory's Parquet tables as views (no log parsing, no run.json): the
    cheap read `albprobe compare` needs. ``present[table]`` says which have rows."""
    ds = Dataset(connect(memory_limit), Path(path), {})
    for t in tables:
        _parquet_view(ds, t)
    return ds


def open_run(path: str | Path, *, memory_limit: str = "1500MB") -> Dataset:
    """Open a run directory; raise AlbprobeError (exit 2) if it is not one."""
    root = Path(path)
    if not root.is_dir():
        raise AlbprobeError(
            f"run directory {root} does not exist or is not a folder",
            hint="pass the folder `albprobe run` created, e.g. runs/20261126-130501-step",
        )
    meta: dict[str, Any] = {}
    run_json = root / "run.json"
    ds = Dataset(connect(memory_limit), root, meta)
    if run_json.exists():
        try:
            meta.update(json.loads(run_json.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            ds.close()
            raise AlbprobeError(
                f"{run_json}: not valid JSON ({exc})",
                hint="restore run.json or remove it; the tables can be analysed without it",
            ) from exc
    ds.present["run_json"] = run_json.exists()
    for t in TABLES:
        _parquet_view(ds, t)
    ds.present["requests"] = ds.count("requests") > 0
    logs = root / "logs"
    hap = sorted(logs.glob("haproxy*.log")) if logs.is_dir() else []
    ds.parse_stats["haproxy"] = haproxy.load(ds.con, hap)
    ds.present["haproxy_log"] = ds.parse_stats["haproxy"].parsed > 0
    if hap:
        _haproxy_offset(ds)
    alb_dir = logs / "alb"
    alb_files = alb.list_files(alb_dir) if alb_dir.is_dir() else []
    ds.parse_stats["alb"] = alb.load(ds.con, alb_files, fields=alb.ANALYSIS_FIELDS)
    ds.present["alb_log"] = ds.parse_stats["alb"].parsed > 0
    _alb_file_notes(ds)
    _load_events(ds)
    if not any(ds.present.get(k) for k in ("requests", "alb_log", "haproxy_log")):
        ds.close()
        raise AlbprobeError(
            f"{root}: no requests table, no proxy log and no ALB log to analyse",
            hint="point at a run directory written by `albprobe run` (it has requests/part-*.parquet)",
        )
    elsewhere = worker_parts.not_gathered(RunDir(root))
    if elsewhere:  # workers wrote their own parts (parts.json) and some are not here
        ds.notes.append(
            f"{len(elsewhere)} worker part(s) listed in parts.json are not in requests/ and were "
            f"not read (first: {elsewhere[0]}); `albprobe analyze` brings them in"
        )
    if ds.bad_parts:
        ds.notes.append(
            f"{len(ds.bad_parts)} unreadable Parquet part(s) skipped: {ds.bad_parts[:3]}"
        )
    return ds


def _alb_file_notes(ds: Dataset) -> None:
    """Name the ALB log objects that were cut short or could not be decompressed at all."""
    st = ds.parse_stats["alb"]
    for f in st.unreadable_files:
        ds.notes.append(
            f"ALB log object {Path(f).name} cannot be decompressed (corrupt .gz): skipped"
        )
    for f in st.truncated_files:
        ds.notes.append(f"ALB log object {Path(f).name} is cut short: read up to the cut")
    for pair in st.copies:
        copy, original = pair.split(" = ", 1)
        ds.notes.append(f"ALB log object {copy} is a copy of {original}: read once")


def open_alb_logs(
    files: list[Path],
    *,
    since: float | None,
    until: float | None,
    memory_limit: str = "1500MB",
    gunicorn_timeout: float | None = None,
) -> Dataset:
    """A dataset made of ALB access logs only (no load run); ``gunicorn_timeout`` (seconds)
    tells a worker killed at the timeout from a keep-alive race (default: gunicorn's)."""
    ds = Dataset(connect(memory_limit), None, {})
    if gunicorn_timeout is not None:
        ds.meta["gunicorn_timeout"] = float(gunicorn_timeout)
    for t in TABLES:
        _empty_view(ds.con, t)
        ds.present[t] = False
    ds.parse_stats["alb"] = alb.load(
        ds.con, files, since=since, until=until, fields=alb.ANALYSIS_FIELDS
    )
    _alb_file_notes(ds)
    row = ds.con.execute("SELECT count(*) FROM alb").fetchone()
    ds.present["alb_log"] = bool(row and row[0])  # entries inside the window
    haproxy.load(ds.con, [])
    ds.con.execute(f"CREATE OR REPLACE TABLE events_all ({EVENTS_COLUMNS})")
    return ds
