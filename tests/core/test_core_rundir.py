import json

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
