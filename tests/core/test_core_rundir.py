import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from core.rundir import SCHEMAS, RunDir, TableWriter


def test_writer_flushes_parts_and_reads_back(tmp_path):
    rd = RunDir.create(tmp_path, "r1")
    w = TableWriter(rd, "events", flush_rows=3, flush_seconds=3600)
    for i in range(7):
        w.append({"ts": float(i), "source": "testbed", "kind": "fault_on", "detail": f"d{i}"})
    assert len(rd.parts("events")) == 2  # 3 + 3 flushed, 1 buffered
    w.close()
    t = rd.read_table("events")
    assert t.num_rows == 7 and w.rows_written == 7
    assert t.column("detail").to_pylist()[-1] == "d6"
    assert t.column("pid").to_pylist() == [None] * 7
    assert t.schema == SCHEMAS["events"]


def test_append_columns_fills_missing_columns_with_nulls(tmp_path):
    rd = RunDir.create(tmp_path, "r2")
    w = TableWriter(rd, "schedule")
    w.append_columns({"ts": [1.0, 2.0], "scheduled": [10, 10]})
    w.close()
    assert rd.read_table("schedule").column("dropped").to_pylist() == [None, None]


def test_meta_is_rewritten_atomically(tmp_path):
    rd = RunDir.create(tmp_path, "r3")
    rd.write_meta({"status": "running"})
    rd.update_meta(status="partial", status_reason="SIGTERM")
    meta = json.loads(rd.run_json.read_text())
    assert meta == {"schema_version": 1, "status": "partial", "status_reason": "SIGTERM"}
    assert rd.read_table("requests").num_rows == 0


def test_unknown_table_is_refused(tmp_path):
    with pytest.raises(ValueError):
        RunDir.create(tmp_path, "r4").table_dir("nope")


def _event(i: int) -> dict:
    return {"ts": float(i), "source": "testbed", "kind": "fault_on", "detail": f"d{i}"}


def test_background_writer_hands_parts_over_and_close_lands_every_row(tmp_path):
    """With an executor, a flush only hands the buffer over (the caller never waits for Parquet);
    close() waits until every part is on disk, in order."""
    rd = RunDir.create(tmp_path, "bg")
    gate = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as ex:
        ex.submit(gate.wait)  # the writer thread is busy: parts queue behind it
        w = TableWriter(rd, "events", flush_rows=2, flush_seconds=3600, executor=ex, max_pending=3)
        for i in range(5):
            w.append(_event(i))  # two flushes handed over, one row buffered
        assert rd.parts("events") == [] and w.rows_written == 0
        gate.set()
        w.close()
    assert [p.name for p in rd.parts("events")] == [f"part-0000{i}.parquet" for i in range(3)]
    assert rd.read_table("events").column("detail").to_pylist() == [f"d{i}" for i in range(5)]
    assert w.rows_written == 5


def test_background_writer_applies_back_pressure_beyond_max_pending(tmp_path):
    """Memory stays bounded when the disk is slower than the load: a flush beyond max_pending
    waits for the oldest part."""
    rd = RunDir.create(tmp_path, "bp")
    gate = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as ex:
        ex.submit(gate.wait)
        w = TableWriter(rd, "events", flush_rows=1, flush_seconds=3600, executor=ex, max_pending=1)
        w.append(_event(0))  # handed over: one part pending
        second = threading.Thread(target=w.append, args=(_event(1),))
        second.start()
        second.join(0.5)
        assert second.is_alive()  # waits for the pending part (can only pass late, never early)
        gate.set()
        second.join(60)
        assert not second.is_alive()
        w.close()
    assert rd.read_table("events").num_rows == 2 and w.rows_written == 2


def test_background_write_failure_surfaces_in_the_caller(tmp_path):
    rd = RunDir.create(tmp_path, "err")
    with ThreadPoolExecutor(max_workers=1) as ex:
        w = TableWriter(rd, "events", flush_rows=10, executor=ex)
        w.append({"ts": "not a time", "source": "x", "kind": "y"})
        with pytest.raises(pa.ArrowInvalid):
            w.close()
    assert w.rows_written == 0 and rd.parts("events") == []
