"""Worker-written parts (core/worker_parts.py) brought into a run directory: after `albprobe run`
and before `analyze` / `compare` read it, so analysis sees an ordinary run directory. The S3
reader is handed in here, the CLI layer (analysis never talks to the network)."""

from __future__ import annotations

from pathlib import Path

from core import worker_parts as wp
from core.rundir import RunDir


def fetcher(aws=None, *, region: str | None = None, profile: str | None = None) -> wp.Fetch:
    """The S3 downloader, with an ``[aws]`` config section's profile/region/endpoint if given."""
    from probes.aws import parts as s3parts
    from probes.aws.session import AwsClients

    clients = (
        AwsClients.from_config(aws, region=region, profile=profile)
        if aws is not None
        else AwsClients(region=region, profile=profile)
    )
    return s3parts.downloader(clients)


def gather(run_dir: str | Path, fetch: wp.Fetch | None = None) -> wp.Gathered | None:
    """Bring the manifest's parts that are not in the run directory yet into it (None: no
    manifest). Raises a one-line AlbprobeError when an s3:// part cannot be downloaded."""
    rundir = RunDir(Path(run_dir))
    if not (rundir.path / wp.MANIFEST).exists():
        return None
    pending = wp.not_gathered(rundir)
    if fetch is None and any(wp.is_s3(u) for u in pending):
        fetch = fetcher()
    return wp.gather(rundir, fetch)
