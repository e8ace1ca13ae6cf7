"""Worker-written Parquet parts on S3 (core/worker_parts.py): check, upload, download.

A Locust worker uploads each part it wrote (s3:PutObject, the opt-in policy
docs/iam-policy-worker-parts.json); `albprobe run` / `analyze` / `compare` download the parts the
master's manifest lists (s3:GetObject, already in the read-only policy). Every AWS failure is one
AlbprobeError line naming the URL and the fix.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from core.errors import AlbprobeError
from probes.aws.collectors import download_object
from probes.aws.session import AwsClients, aws_errors

# S3 bucket names: 3-63 characters, lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/key -> (bucket, 'some/key'); a one-line error for anything else."""
    if not uri.startswith("s3://"):
        raise AlbprobeError(f"not an S3 URL: {uri!r}", hint="write s3://bucket/prefix")
    bucket, _, key = uri[5:].partition("/")
    if not _BUCKET.match(bucket):
        raise AlbprobeError(
            f"{uri}: {bucket!r} is not an S3 bucket name",
            hint="write s3://bucket/prefix with the bucket's name (3-63 of a-z 0-9 . -)",
        )
    return bucket, key.strip("/")


def _clients(clients: AwsClients | None) -> AwsClients:
    return clients if clients is not None else AwsClients()


def check_dest(dest: str, clients: AwsClients | None = None) -> None:
    """Can this process write under ``dest``? One small object is put to find out (it stays:
    deleting it would need s3:DeleteObject too)."""
    bucket, prefix = split_uri(dest)
    key = f"{prefix}/.albprobe-write-check" if prefix else ".albprobe-write-check"
    c = _clients(clients)
    try:
        with aws_errors(f"writing worker parts to {dest}"):
            c.s3.put_object(Bucket=bucket, Key=key, Body=str(time.time()).encode())
    except AlbprobeError as exc:
        if "NoSuchBucket" in exc.message and not exc.hint:
            exc.hint = "create the bucket, or name one this worker's credentials can write"
        raise


def upload(path: Path, uri: str, clients: AwsClients | None = None) -> None:
    bucket, key = split_uri(uri)
    c = _clients(clients)
    with aws_errors(f"uploading worker part {uri}"), open(path, "rb") as fh:
        c.s3.put_object(Bucket=bucket, Key=key, Body=fh)


def downloader(clients: AwsClients | None = None):
    """A core.worker_parts.Fetch: (s3:// URI, local file) -> the object downloaded there."""
    c = _clients(clients)

    def fetch(uri: str, target: Path) -> None:
        bucket, key = split_uri(uri)
        with aws_errors(f"downloading worker part {uri}"):
            download_object(c.s3, bucket, key, target, None)

    return fetch
