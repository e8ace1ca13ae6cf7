"""The end-of-run table: source x status x CORS verdict (the fact albprobe exists to establish)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from probes.rundir import RunDir


def cross_table(rundir: RunDir) -> list[tuple[str, str, int, str, int]]:
    """(kind, source, status, cors, count) over the run's requests."""
    import duckdb

    if not rundir.parts("requests"):
        return []
    glob = str(rundir.table_dir("requests") / "part-*.parquet")
    q = f"""
        select kind, source, status,
               case when cors_ok then 'pass' when cors_ok is null then '-' else 'fail: ' || coalesce(cors_step, '?') end,
               count(*)
        from read_parquet('{glob}') group by all order by 5 desc
    """
    return [tuple(r) for r in duckdb.sql(q).fetchall()]


def print_run_summary(console: Console, rundir: RunDir) -> None:
    rows = cross_table(rundir)
    table = Table(
        "kind", "source", "status", "CORS", "requests", title="source x status x CORS verdict"
    )
    for kind, source, status, cors, n in rows:
        table.add_row(kind, source, str(status), cors, str(n))
    console.print(table)
