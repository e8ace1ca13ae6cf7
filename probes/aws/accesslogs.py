"""Where ALB access-log objects live in S3, and which keys cover a time window (pure helpers).

Key layout (AWS's "Access log files" documentation; docs/aws.md):
  bucket[/prefix]/AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/
      <account>_elasticloadbalancing_<region>_app.<lb-name>.<lb-id>_<end-time>_<ip>_<random>.log.gz
Each node publishes a file every 5 minutes; <end-time> (yyyymmddTHHMMZ) closes its interval. Keys of
one load balancer sort by end-time within a day folder, so a window maps to a StartAfter + a stop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.errors import AlbprobeError

INTERVAL = timedelta(minutes=5)  # ALB log publication interval
SLACK = timedelta(minutes=1)

_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?P<account>\d{12})/elasticloadbalancing/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_elasticloadbalancing_(?P=region)_(?P<lb>[^_]+)_(?P<end>\d{8}T\d{4}Z)_"
    r"(?P<ip>[^_]+)_(?P<rand>[^_/]+)\.log(?:\.gz)?$"
)


@dataclass(frozen=True)
class LogKey:
    key: str
    account: str
    region: str
    lb: str  # e.g. app.academy-alb.50dc6c495c0c9188
    end: datetime
    size: int | None = None  # bytes, when known from the listing

    @property
    def covers(self) -> tuple[datetime, datetime]:
        return self.end - INTERVAL, self.end


def parse_key(key: str, size: int | None = None) -> LogKey | None:
    """A key of an ALB access-log object, else None (connection/health-check logs, digests)."""
    m = _KEY.search(key)
    if not m:
        return None
    end = datetime.strptime(m["end"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    return LogKey(key, m["account"], m["region"], m["lb"], end, size)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # without leading/trailing slash ("" for the bucket root)


def parse_s3_uri(uri: str) -> S3Location:
    if not uri.startswith("s3://"):
        raise AlbprobeError(
            f"not an S3 URI: {uri!r}", hint="write s3://bucket[/prefix] (the access_logs.s3 values)"
        )
    rest = uri[5:]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise AlbprobeError(f"no bucket in {uri!r}", hint="write s3://bucket[/prefix]")
    return S3Location(bucket, prefix.strip("/"))


@dataclass(frozen=True)
class LoadBalancerId:
    account: str
    region: str
    name: str
    id: str

    @property
    def key_id(self) -> str:
        """How the load balancer appears in log keys: slashes of app/name/id become dots."""
        return f"app.{self.name}.{self.id}"

    @property
    def dimension(self) -> str:
        """CloudWatch `LoadBalancer` dimension value: app/name/id."""
        return f"app/{self.name}/{self.id}"


def parse_lb_arn(arn: str) -> LoadBalancerId:
    m = re.match(
        r"^arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
        r"loadbalancer/app/(?P<name>[^/]+)/(?P<id>[0-9a-f]+)$",
        arn,
    )
    if not m:
        raise AlbprobeError(
            f"not an Application Load Balancer ARN: {arn!r}",
            hint="e.g. arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>",
        )
    return LoadBalancerId(m["account"], m["region"], m["name"], m["id"])


def tg_dimension(arn: str) -> str:
    """CloudWatch `TargetGroup` dimension value: targetgroup/name/id (the ARN's last part)."""
    return arn.split(":")[-1]


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def key_window(start: float, end: float) -> tuple[datetime, datetime]:
    """The end-times of files that can hold requests in [start, end]."""
    if end < start:
        raise AlbprobeError(f"time window ends before it starts ({start} > {end})")
    lo = _utc(start).replace(second=0, microsecond=0)
    hi = _utc(end) + INTERVAL + SLACK
    return lo, hi


def day_prefixes(base: str, account: str, region: str, lo: datetime, hi: datetime) -> list[str]:
    """The yyyy/mm/dd folders between lo and hi (UTC), under ``base`` (bucket prefix)."""
    out = []
    day = lo.date()
    root = f"{base}/" if base else ""
    while day <= hi.date():
        out.append(
            f"{root}AWSLogs/{account}/elasticloadbalancing/{region}/"
            f"{day.year:04d}/{day.month:02d}/{day.day:02d}/"
        )
        day += timedelta(days=1)
    return out


def start_after(folder: str, account: str, region: str, lb_key_id: str, lo: datetime) -> str:
    """A StartAfter that skips every file of this load balancer that ends before ``lo``."""
    before = lo - timedelta(minutes=1)
    # '~' sorts after '_' and digits: every key ending at `before` is skipped, `lo` is not.
    return f"{folder}{account}_elasticloadbalancing_{region}_{lb_key_id}_{before:%Y%m%dT%H%M}Z~"


def in_window(k: LogKey, lo: datetime, hi: datetime) -> bool:
    return lo <= k.end <= hi
