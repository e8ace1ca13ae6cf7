"""The run directory (docs/run-directory.md): table schemas, run.json, and bounded-memory writers.

Every collector writes through ``TableWriter``: rows are buffered and flushed as a new Parquet part
when the buffer reaches ``flush_rows`` or ``flush_seconds``, so memory stays bounded however long
the run, and a crash loses at most one unflushed buffer (plus, with a background executor, the
parts still being written).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1

SCHEMAS: dict[str, pa.Schema] = {
    "requests": pa.schema(
        [
            ("ts", pa.float64()),
            ("intended_ts", pa.float64()),
            ("kind", pa.string()),
            ("endpoint", pa.string()),
            ("method", pa.string()),
            ("path", pa.string()),
            ("status", pa.int32()),
            ("source", pa.string()),
            ("source_evidence", pa.string()),
            ("cors_ok", pa.bool_()),
            ("cors_step", pa.string()),
            ("cors_message", pa.string()),
            ("latency_ms", pa.float64()),
            ("co_latency_ms", pa.float64()),
            ("bytes", pa.int64()),
            ("error", pa.string()),
            ("conn_reused", pa.bool_()),
            ("worker_id", pa.string()),
            ("user_id", pa.int32()),
            # ip:port from the app's X-Albprobe-Target header; null on proxy pages and errors
            ("target", pa.string()),
        ]
    ),
    "health": pa.schema(
        [
            ("ts", pa.float64()),
            ("target", pa.string()),
            ("state", pa.string()),
            ("reason", pa.string()),
            ("description", pa.string()),
            ("collector", pa.string()),
            ("in_flight", pa.int32()),
            ("queued", pa.int32()),
        ]
    ),
    "metrics": pa.schema(
        [
            ("ts", pa.float64()),
            ("metric", pa.string()),
            ("stat", pa.string()),
            ("period", pa.int32()),
            ("value", pa.float64()),
            ("dimensions", pa.string()),
        ]
    ),
    "events": pa.schema(
        [
            ("ts", pa.float64()),
            ("source", pa.string()),
            ("kind", pa.string()),
            ("detail", pa.string()),
            ("pid", pa.int64()),
            ("target", pa.string()),  # ip:port the event is about (testbed target events)
        ]
    ),
    "schedule": pa.schema(
        [("ts", pa.float64()), ("scheduled", pa.int64()), ("dropped", pa.int64())]
    ),
}


@dataclass(frozen=True)
class RunDir:
    """A run directory on disk; cheap to construct, creates folders lazily."""

    path: Path

    @classmethod
    def create(cls, root: str | Path, run_id: str) -> RunDir:
        # Absolute: child processes (Locust, gunicorn) run in other folders and get these paths.
        path = Path(root).resolve() / run_id
        path.mkdir(parents=True, exist_ok=False)
        (path / "logs").mkdir()
        return cls(path)

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def table_dir(self, table: str) -> Path:
        if table not in SCHEMAS:
            raise ValueError(f"unknown run-directory table {table!r}")
        return self.path / table

    def parts(self, table: str) -> list[Path]:
        d = self.table_dir(table)
        # Every writer names its parts <prefix>-NNNNN.parquet; in-progress files end in .tmp.
        return sorted(d.glob("*.parquet")) if d.is_dir() else []

    def read_meta(self) -> dict[str, Any]:
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        """Atomic rewrite of run.json, so a crash mid-write never leaves it unreadable."""
        data = dict(meta)
        data.setdefault("schema_version", SCHEMA_VERSION)
        tmp = self.run_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, self.run_json)

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        meta = self.read_meta() if self.run_json.exists() else {}
        meta.update(changes)
        self.write_meta(meta)
        return meta

    def read_table(self, table: str) -> pa.Table:
        """All parts of a table (an empty table with the schema when none were written)."""
        parts = self.parts(table)
        if not parts:
            return SCHEMAS[table].empty_table()
        return pa.concat_tables(pq.read_table(p, schema=SCHEMAS[table]) for p in parts)


class TableWriter:
    """Append rows (dicts) to one table of a run directory as numbered Parquet parts.

    Thread-safe; ``prefix`` keeps parts of concurrent writers apart (e.g. one per Locust worker).

    With ``executor`` (a ``concurrent.futures.Executor`` with one worker, so parts are written in
    order), a flush only hands the full buffer over: turning rows into columns, Parquet encoding and
    the disk happen on the executor's thread, and the caller (a Locust process's event loop) goes
    on at once. At most ``max_pending`` buffers wait for the executor; a flush beyond that waits for
    the oldest (back-pressure keeps memory bounded when the disk is slower than the load). In this
    mode one thread appends and flushes (a Locust process's greenlets); ``close()`` waits for
    every part, and ``rows_written`` counts the rows whose part is on disk.
    """

    def __init__(
        self,
        rundir: RunDir,
        table: str,
        *,
        prefix: str = "part",
        flush_rows: int = 50_000,
        flush_seconds: float = 2.0,
        threadsafe: bool = True,
        executor: Executor | None = None,
        max_pending: int = 2,
        on_part: Callable[[Path, int], None] | None = None,
    ) -> None:
        self.rundir = rundir
        self.table = table
        self.schema = SCHEMAS[table]
        self._names = self.schema.names
        self._types = [self.schema.field(n).type for n in self._names]
        self._prefix = prefix
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._cols: dict[str, list[Any]] = {n: [] for n in self._names}
        self._rows: list[Mapping[str, Any]] = []
        self._n = 0
        self._part = 0
        self._last_flush = time.monotonic()
        # A Locust process appends from greenlets that never switch inside append(): no lock needed.
        self._lock = threading.Lock() if threadsafe else contextlib.nullcontext()
        self._executor = executor
        self._max_pending = max(1, max_pending)
        self._pending: deque[tuple[Future, int]] = deque()
        self._written = 0
        # (file name, rows) of every part handed over for writing, in order (a Locust worker
        # that writes its own parts reports them to the master: core/worker_parts.py)
        self.submitted: list[tuple[str, int]] = []
        # called with (path, rows) once a part is on disk, on the thread that wrote it
        self._on_part = on_part
        self.table_dir = rundir.table_dir(table)
        self.table_dir.mkdir(parents=True, exist_ok=True)

    @property
    def rows_written(self) -> int:
        """Rows whose part is on disk (a part still being written is not counted yet)."""
        while self._pending and self._pending[0][0].done():
            self._settle_oldest()
        return self._written

    def append(self, row: Mapping[str, Any]) -> None:
        # Hot path (once per request under load): rows are kept as they come and turned into
        # columns at write time; past 256 buffered rows the clock is read every 256th row only.
        with self._lock:
            self._rows.append(row)
            self._n += 1
            n = self._n
            due = n >= self._flush_rows or (
                (n < 256 or not n & 0xFF)
                and time.monotonic() - self._last_flush >= self._flush_seconds
            )
        if due:
            self.flush()

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def append_columns(self, columns: Mapping[str, list[Any]]) -> None:
        """Append a batch given column-wise (how Locust workers ship rows to the master)."""
        with self._lock:
            n = len(next(iter(columns.values()))) if columns else 0
            for name in self._names:
                col = columns.get(name)
                self._cols[name].extend(col if col is not None else [None] * n)
            self._n += n
            due = self._n >= self._flush_rows or (
                time.monotonic() - self._last_flush >= self._flush_seconds
            )
        if due:
            self.flush()

    def flush(self, *, take_first: bool = False) -> None:
        """Hand the buffer over as a part. ``take_first``: swap the buffer out and hand it over
        before any wait, so the part holds exactly the rows appended up to this call and the
        caller goes on at once (a worker's stats report names the parts of its rows); the wait
        for back-pressure comes after, and only with more than ``max_pending`` parts pending."""
        if self._executor is None:
            with self._lock:
                batch = self._take()
                if batch is not None:
                    self._write(*batch)
                    self._written += batch[2]
            return
        if take_first:
            with self._lock:
                batch = self._take()
            if batch is not None:
                self._pending.append((self._executor.submit(self._write, *batch), batch[2]))
            while len(self._pending) > self._max_pending:
                self._settle_oldest()
            return
        # Back-pressure first, so the buffer handed over below is the freshest one.
        while len(self._pending) >= self._max_pending:
            self._settle_oldest()
        with self._lock:
            batch = self._take()
        if batch is not None:
            self._pending.append((self._executor.submit(self._write, *batch), batch[2]))

    def close(self) -> None:
        """Flush the buffer and wait until every part is on disk."""
        self.flush()
        while self._pending:
            self._settle_oldest()

    def _take(self) -> tuple[dict[str, list[Any]], list[Mapping[str, Any]], int, int] | None:
        """Swap out the buffer (under the lock): (columns, rows, row count, part number)."""
        self._last_flush = time.monotonic()
        if not self._n:
            return None
        batch = (self._cols, self._rows, self._n, self._part)
        self._cols = {name: [] for name in self._names}
        self._rows = []
        self._n = 0
        self._part += 1
        self.submitted.append((self.part_name(batch[3]), batch[2]))
        return batch

    def part_name(self, part: int) -> str:
        return f"{self._prefix}-{part:05d}.parquet"

    def _settle_oldest(self) -> None:
        """Wait for the oldest pending part (cooperatively under gevent); count its rows. Another
        greenlet may settle it meanwhile: only the one that finds it still first pops it."""
        fut, n = self._pending[0]
        ok = False
        try:
            fut.result()  # a failed write raises here, in the caller's thread
            ok = True
        finally:
            if self._pending and self._pending[0][0] is fut:
                self._pending.popleft()
                self._written += n if ok else 0

    def _write(
        self, cols: dict[str, list[Any]], rows: list[Mapping[str, Any]], n: int, part: int
    ) -> None:
        if rows:  # rows appended one by one go after the column batches (arrival order kept
            # within each kind of input; a writer is fed one way in practice)
            for name in self._names:
                cols[name].extend([r.get(name) for r in rows])
        table = pa.table(
            {k: pa.array(cols[k], type=t) for k, t in zip(self._names, self._types, strict=True)}
        )
        final = self.table_dir / self.part_name(part)
        tmp = final.with_suffix(".tmp")
        # Write-then-rename: a reader (or a crash) never sees a half-written part.
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
        if self._on_part is not None:
            self._on_part(final, n)
