"""Testbed lifecycle details a new user meets (paths, working directory)."""

from __future__ import annotations


def test_a_relative_log_dir_works_from_any_working_directory(make_testbed, tmp_path, monkeypatch):
    """`albprobe run` from a user's project folder passes runs/<id>/logs: gunicorn runs in another
    folder, so the testbed must hand it absolute paths."""
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    tb = make_testbed(log_dir=Path("runs/x/logs"))
    tb.wait_for_health("UP")
    assert (tmp_path / "runs/x/logs/gunicorn.log").stat().st_size > 0
