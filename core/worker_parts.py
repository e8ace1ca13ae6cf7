"""Worker-written parts: the layout under DEST, the master's manifest, and the gather.

In this mode (`load.worker_parts` / `--albprobe-worker-parts` / `albprobe run --worker-parts`)
each Locust worker writes its own `requests` Parquet parts instead of shipping its rows to the
master (docs/distributed.md). DEST is a local folder or ``s3://bucket/prefix``; a worker's parts
go to ``DEST/<run_id>/<worker_id>/requests/part-NNNNN.parquet``.

The master's run directory keeps ``parts.json`` (MANIFEST): for each worker, where its parts are
and the rows of each part, as the worker claimed them in the same stats report that carried
Locust's count of those requests (so the manifest's rows and Locust's count agree, report by
report, even when a worker dies). ``gather`` brings the listed parts into the run directory's
``requests/`` as ``<worker_id>-part-NNNNN.parquet`` (a hard link or a copy for a local DEST, a
download through ``fetch`` for s3://): after it the run directory is an ordinary one.

Nothing here talks to the network: the S3 reader and writer are probes/aws/parts.py's, handed in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import AlbprobeError
from core.rundir import RunDir

MANIFEST = "parts.json"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

Fetch = Callable[[str, Path], None]  # (s3:// URI, local file) -> the object downloaded there


def is_s3(dest: str) -> bool:
    return dest.startswith("s3://")


def worker_location(dest: str, run_id: str, worker_id: str) -> str:
    """Where one worker of one run writes: DEST/<run_id>/<worker_id> (a folder or an s3:// URI)."""
    if is_s3(dest):
        return f"{dest.rstrip('/')}/{run_id}/{worker_id}"
    return str(Path(dest).resolve() / run_id / worker_id)


def check_local_dest(dest: str) -> None:
    """A local DEST must be a folder this process can create and write; anything with another
    scheme than s3:// is refused. Raises a one-line AlbprobeError naming DEST and the fix."""
    if _SCHEME.match(dest) and not is_s3(dest):
        raise AlbprobeError(
            f"worker parts destination {dest!r}: not a local folder or an s3:// URL",
            hint="give a folder (e.g. /data/albprobe-parts) or s3://bucket/prefix",
        )
    path = Path(dest)
    try:
        path.mkdir(parents=True, exist_ok=True)
        # a probe of this process's own: workers that start together check one DEST at once,
        # and with one shared name a worker's unlink removed another's probe (ENOENT)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".albprobe-write-check-"):
            pass
    except OSError as exc:
        raise AlbprobeError(
            f"worker parts destination {dest}: cannot write there ({exc.strerror or exc})",
            hint="give a folder every worker's user can create and write, or s3://bucket/prefix",
        ) from None


# ---------------------------------------------------------------------------------------------
# The master's manifest


@dataclass
class WorkerParts:
    location: str
    parts: list[list[Any]] = field(default_factory=list)  # [name relative to location, rows]
    error: str | None = None

    @property
    def rows(self) -> int:
        return sum(int(n) for _, n in self.parts)


@dataclass
class Manifest:
    dest: str
    run_id: str
    workers: dict[str, WorkerParts] = field(default_factory=dict)
    changed: bool = False

    def add_report(self, report: dict[str, Any]) -> None:
        """One worker report's PARTS entry: {worker_id, location, parts: [[name, rows]], error}."""
        wid = str(report.get("worker_id"))
        w = self.workers.setdefault(wid, WorkerParts(str(report.get("location", ""))))
        new = report.get("parts") or []
        w.parts.extend([str(name), int(n)] for name, n in new)
        if report.get("error") and not w.error:
            w.error = str(report["error"])
        self.changed = self.changed or bool(new) or bool(report.get("error"))

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.workers.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "dest": self.dest,
            "run_id": self.run_id,
            "rows": self.rows,
            "workers": {
                wid: {"location": w.location, "rows": w.rows, "parts": w.parts, "error": w.error}
                for wid, w in sorted(self.workers.items())
            },
        }

    def write(self, rundir: RunDir) -> None:
        """Atomic rewrite of parts.json (a crash mid-write never leaves it unreadable)."""
        tmp = rundir.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        os.replace(tmp, rundir.path / MANIFEST)
        self.changed = False

    @classmethod
    def read(cls, rundir: RunDir) -> Manifest | None:
        path = rundir.path / MANIFEST
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            m = cls(str(raw["dest"]), str(raw["run_id"]))
            for wid, w in raw.get("workers", {}).items():
                m.workers[wid] = WorkerParts(str(w["location"]), list(w["parts"]), w.get("error"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AlbprobeError(
                f"{path}: not a readable worker-parts manifest ({exc})",
                hint="restore parts.json from the master's run directory",
            ) from None
        return m

    def summary(self) -> dict[str, Any]:
        """What run.json records: DEST, and each worker's rows and number of parts."""
        return {
            "dest": self.dest,
            "manifest": MANIFEST,
            "rows": self.rows,
            "workers": {
                wid: {"location": w.location, "rows": w.rows, "parts": len(w.parts)}
                | ({"error": w.error} if w.error else {})
                for wid, w in sorted(self.workers.items())
            },
        }


# ---------------------------------------------------------------------------------------------
# The gather


def local_name(worker_id: str, name: str) -> str:
    """requests/part-00003.parquet of w1 -> w1-part-00003.parquet (in the run's requests/)."""
    return f"{worker_id}-{Path(name).name}"


@dataclass
class Gathered:
    rows_here: int = 0  # rows of listed parts now in the run directory (read from the files)
    rows_elsewhere: int = 0  # rows of listed s3:// parts not fetched (no fetcher), as claimed
    missing: list[str] = field(default_factory=list)  # listed parts that were not found
    mismatched: list[str] = field(default_factory=list)  # parts whose rows differ from the claim


def _num_rows(path: Path) -> int | None:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # another filesystem, or links not allowed
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def gather(rundir: RunDir, fetch: Fetch | None = None, *, wait: float = 0.0) -> Gathered | None:
    """Bring the manifest's parts into ``rundir/requests`` (idempotent; None without a manifest).
    Local parts are linked (or copied); s3:// parts are downloaded with ``fetch``, or counted as
    elsewhere without one. Parts listed but not found are named in ``missing``. ``wait``: seconds
    to wait for local parts that are listed but not there yet (a worker's last part is named in
    its final report before it is on disk)."""
    manifest = Manifest.read(rundir)
    if manifest is None:
        return None
    out = Gathered()
    deadline = time.monotonic() + wait
    table = rundir.table_dir("requests")
    for wid, w in sorted(manifest.workers.items()):
        for name, claimed in w.parts:
            dst = table / local_name(wid, name)
            src_uri = f"{w.location.rstrip('/')}/{name}"
            if not dst.exists():
                table.mkdir(parents=True, exist_ok=True)
                if is_s3(src_uri):
                    if fetch is None:
                        out.rows_elsewhere += int(claimed)
                        continue
                    tmp = dst.with_suffix(".tmp")
                    fetch(src_uri, tmp)
                    os.replace(tmp, dst)
                else:
                    src = Path(src_uri)
                    while not src.exists() and time.monotonic() < deadline:
                        time.sleep(0.05)
                    if not src.exists():
                        out.missing.append(src_uri)
                        continue
                    _link_or_copy(src, dst)
            n = _num_rows(dst)
            if n is None:
                out.missing.append(src_uri)
                continue
            if n != int(claimed):
                out.mismatched.append(f"{src_uri}: {n} rows, {claimed} claimed")
            out.rows_here += n
    return out


def not_gathered(rundir: RunDir) -> list[str]:
    """The manifest's parts that are not in the run directory yet (cheap: no file is read)."""
    try:
        manifest = Manifest.read(rundir)
    except AlbprobeError:
        return []
    if manifest is None:
        return []
    table = rundir.path / "requests"
    return [
        f"{w.location.rstrip('/')}/{name}"
        for wid, w in sorted(manifest.workers.items())
        for name, _ in w.parts
        if not (table / local_name(wid, name)).exists()
    ]
