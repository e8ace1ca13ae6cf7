"""A Locust worker's own Parquet parts (core/worker_parts.py): where it writes them, and what it
tells the master in each stats report.

Local DEST: the parts are written straight into DEST/<run_id>/<worker_id>/requests/. s3:// DEST:
they are written to a local staging folder and each finished part is uploaded (on the writer's
thread, never in the event loop), then removed locally. A failure is kept as one line and sent to
the master, which aborts the run with it (the rows of a part that could not be published are lost
and the run says so).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from core import worker_parts as wp
from core.errors import AlbprobeError
from core.rundir import RunDir, TableWriter

PARTS_KEY = "albprobe_parts"


def check_dest(dest: str) -> None:
    """Raise a one-line AlbprobeError if this process cannot write under ``dest``."""
    if wp.is_s3(dest):
        from probes.aws import parts as s3parts

        s3parts.check_dest(dest)
    else:
        wp.check_local_dest(dest)


def _one_line(exc: BaseException) -> str:
    return exc.one_line() if isinstance(exc, AlbprobeError) else f"{type(exc).__name__}: {exc}"


class PartsSink:
    """One worker's parts for one run: a TableWriter over a local folder plus, for s3://, the
    upload of each finished part."""

    def __init__(self, dest: str, run_id: str, worker_id: str, executor: Any) -> None:
        self.dest = dest
        self.worker_id = worker_id
        self.location = wp.worker_location(dest, run_id, worker_id)
        self.error: str | None = None
        self._reported = 0
        self._staging: Path | None = None
        check_dest(dest)
        if wp.is_s3(dest):
            self._staging = Path(tempfile.mkdtemp(prefix=f"albprobe-parts-{worker_id}-"))
            root = self._staging
        else:
            root = Path(self.location)
        root.mkdir(parents=True, exist_ok=True)
        # Parts are cut at every stats report (flush(take_first=True)) or at 50,000 rows, so the
        # rows of a report's parts are the requests that report counts.
        self.writer = TableWriter(
            RunDir(root),
            "requests",
            prefix="part",
            flush_seconds=3600.0,
            threadsafe=False,
            executor=executor,
            on_part=self._published if self._staging is not None else None,
        )

    def _published(self, path: Path, _rows: int) -> None:
        """On the writer's thread: upload a finished part to S3, then drop the local copy."""
        from probes.aws import parts as s3parts

        try:
            s3parts.upload(path, f"{self.location}/requests/{path.name}")
            path.unlink(missing_ok=True)
        except Exception as exc:  # kept for the next report; the master aborts the run
            self.error = self.error or _one_line(exc)

    def report(self) -> dict[str, Any]:
        """Cut a part of the rows so far and name the parts not yet reported (report listener).
        A periodic report does not wait for the part to be written (or uploaded), so the event
        loop goes on; the final report does (the plugin calls close() first), and the master
        waits for that report (probes/loadgen/final_reports.py)."""
        try:
            self.writer.flush(take_first=True)
        except Exception as exc:
            self.error = self.error or _one_line(exc)
        new = self.writer.submitted[self._reported :]
        self._reported += len(new)
        return {
            "worker_id": self.worker_id,
            "location": self.location,
            "parts": [[f"requests/{name}", n] for name, n in new],
            "error": self.error,
        }

    def close(self) -> None:
        """Every part on disk (and uploaded); the writer stays usable."""
        try:
            self.writer.close()
        except Exception as exc:
            self.error = self.error or _one_line(exc)

    def cleanup(self) -> None:
        if self._staging is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._staging)
