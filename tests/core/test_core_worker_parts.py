"""core/worker_parts.py: the manifest and the gather of worker-written parts (no processes)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest

from core import worker_parts as wp
from core.errors import AlbprobeError
from core.rundir import RunDir, TableWriter


def _worker_parts(root, wid: str, sizes: list[int]) -> list[list]:
    """A worker's parts as its PartsSink leaves them: cut at each report (take_first)."""
    ex = ThreadPoolExecutor(max_workers=1)
    w = TableWriter(
        RunDir(root / wid), "requests", flush_seconds=3600, threadsafe=False, executor=ex
    )
    for n in sizes:
        for i in range(n):
            w.append({"ts": float(i), "worker_id": wid, "status": 200})
        w.flush(take_first=True)
    w.close()
    ex.shutdown()
    return [[f"requests/{name}", n] for name, n in w.submitted]


def test_gather_links_the_listed_parts_and_counts_them(tmp_path):
    dest = tmp_path / "dest" / "run1"
    run = RunDir.create(tmp_path / "runs", "run1")
    m = wp.Manifest(str(tmp_path / "dest"), "run1")
    for wid, sizes in (("w0", [3, 5]), ("w1", [4])):
        parts = _worker_parts(dest, wid, sizes)
        m.add_report({"worker_id": wid, "location": str(dest / wid), "parts": parts})
    # a part written after the worker's last report is not listed, and not taken
    _worker_parts(dest / "late", "w0", [7])
    m.write(run)
    assert m.rows == 12 and not m.changed
    assert wp.not_gathered(run) and len(wp.not_gathered(run)) == 3
    g = wp.gather(run)
    assert g is not None and (g.rows_here, g.rows_elsewhere, g.missing) == (12, 0, [])
    names = sorted(p.name for p in run.parts("requests"))
    assert names == ["w0-part-00000.parquet", "w0-part-00001.parquet", "w1-part-00000.parquet"]
    assert run.read_table("requests").num_rows == 12 and wp.not_gathered(run) == []
    # idempotent: a second gather finds them in place
    again = wp.gather(run)
    assert again is not None and again.rows_here == 12
    summary = wp.Manifest.read(run).summary()
    assert summary["workers"]["w0"] == {"location": str(dest / "w0"), "rows": 8, "parts": 2}


def test_a_listed_part_that_is_gone_is_named_and_a_wrong_count_too(tmp_path):
    dest = tmp_path / "dest"
    run = RunDir.create(tmp_path / "runs", "r")
    parts = _worker_parts(dest, "w0", [2, 3])
    (dest / "w0" / parts[0][0]).unlink()  # the worker died before this part was on disk
    parts[1][1] = 4  # and this one holds fewer rows than it said
    m = wp.Manifest(str(dest), "r")
    m.add_report({"worker_id": "w0", "location": str(dest / "w0"), "parts": parts})
    m.write(run)
    g = wp.gather(run, wait=0.2)
    assert g is not None and g.rows_here == 3
    assert g.missing == [f"{dest / 'w0'}/requests/part-00000.parquet"]
    assert g.mismatched and "3 rows, 4 claimed" in g.mismatched[0]


def test_s3_parts_are_fetched_with_the_fetcher_or_counted_as_claimed(tmp_path):
    src = tmp_path / "bucket"
    parts = _worker_parts(src, "w0", [6])
    run = RunDir.create(tmp_path / "runs", "r")
    m = wp.Manifest("s3://b/p", "r")
    m.add_report({"worker_id": "w0", "location": "s3://b/p/r/w0", "parts": parts})
    m.write(run)
    g = wp.gather(run)  # no fetcher: counted as the worker claimed, not read
    assert g is not None and (g.rows_here, g.rows_elsewhere) == (0, 6)
    fetched = []

    def fetch(uri: str, target) -> None:
        fetched.append(uri)
        target.write_bytes((src / "w0" / uri.split("/r/w0/", 1)[1]).read_bytes())

    g = wp.gather(run, fetch)
    assert g is not None and (g.rows_here, g.rows_elsewhere) == (6, 0)
    assert fetched == ["s3://b/p/r/w0/requests/part-00000.parquet"]
    assert pq.read_table(run.parts("requests")[0]).num_rows == 6


def test_worker_errors_are_kept_and_a_bad_manifest_is_one_line(tmp_path):
    run = RunDir.create(tmp_path / "runs", "r")
    m = wp.Manifest("s3://b/p", "r")
    m.add_report({"worker_id": "w1", "location": "s3://b/p/r/w1", "parts": [], "error": "denied"})
    assert m.changed and m.to_dict()["workers"]["w1"]["error"] == "denied"
    (run.path / wp.MANIFEST).write_text("{not json")
    with pytest.raises(AlbprobeError) as e:
        wp.gather(run)
    assert "parts.json" in e.value.one_line() and "\n" not in e.value.one_line()
    assert wp.not_gathered(run) == []
    assert wp.gather(RunDir.create(tmp_path / "runs", "plain")) is None


@pytest.mark.parametrize("bad", ["gs://bucket/x", "https://example.com/x"])
def test_a_dest_with_another_scheme_is_refused(bad):
    with pytest.raises(AlbprobeError, match="not a local folder or an s3:// URL"):
        wp.check_local_dest(bad)


def test_an_unwritable_dest_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AlbprobeError) as e:
        wp.check_local_dest(str(blocker / "sub"))
    assert str(blocker / "sub") in e.value.one_line() and "cannot write there" in str(e.value)


def test_workers_checking_one_dest_at_once_all_pass(tmp_path):
    """Workers that start together check one DEST at the same moment (a CI run beside a CPU hog
    aborted with "worker w1 cannot write its parts ... (No such file or directory)": with one
    shared probe name, a worker's unlink removed the other's probe). 8 processes x 200 checks."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(8) as pool:
        errors = pool.map(_check_many, [str(tmp_path / "parts")] * 8)
    assert errors == [0] * 8
    assert list((tmp_path / "parts").iterdir()) == []  # no probe left behind


def _check_many(dest: str) -> int:
    errors = 0
    for _ in range(200):
        try:
            wp.check_local_dest(dest)
        except AlbprobeError:
            errors += 1
    return errors


def test_take_first_cuts_exactly_the_rows_so_far(tmp_path):
    """A report's parts hold the rows appended before it, even when back-pressure waits."""
    ex = ThreadPoolExecutor(max_workers=1)
    w = TableWriter(
        RunDir(tmp_path),
        "requests",
        flush_seconds=3600,
        threadsafe=False,
        executor=ex,
        max_pending=1,
    )
    for k in range(4):
        for _ in range(k + 1):
            w.append({"ts": 1.0})
        w.flush(take_first=True)
    w.close()
    ex.shutdown()
    assert w.submitted == [(f"part-{k:05d}.parquet", k + 1) for k in range(4)]
    assert w.rows_written == 10
    assert json.dumps(w.submitted)  # what a worker's report carries is plain data


def test_a_worker_that_cannot_write_its_parts_aborts_the_run(tmp_path, monkeypatch):
    """The master's side: a report with an error names the worker, DEST and the error, and
    stops the run (the runner's quit is called)."""
    import types

    import gevent

    from core.config import load_config
    from probes.loadgen import plugin
    from probes.loadgen.parts_sink import PARTS_KEY

    quits = []
    env = types.SimpleNamespace(runner=types.SimpleNamespace(quit=lambda: quits.append(1)))
    s = plugin.LoadSession(config=load_config(None), shape="users", role="master")
    s.environment = env
    s.rundir = RunDir.create(tmp_path, "r")
    s.manifest = wp.Manifest("s3://b/p", "r")
    monkeypatch.setattr(plugin, "SESSION", s)
    report = {"worker_id": "w1", "location": "s3://b/p/r/w1", "parts": [["requests/x", 5]]}
    plugin._on_worker_report("client-1", {PARTS_KEY: report})
    assert s.abort_reason is None and s.manifest.rows == 5
    err = "AWS denied s3:PutObject (AccessDenied) while uploading worker part s3://b/p/r/w1/x"
    plugin._on_worker_report("client-1", {PARTS_KEY: {**report, "parts": [], "error": err}})
    assert s.abort_reason == f"worker w1 cannot write its parts to s3://b/p: {err}"
    gevent.sleep(0)  # the quit was spawned
    assert quits == [1]
