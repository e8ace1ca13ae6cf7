"""The AWS side of a run: target health over time, CloudWatch metrics, ALB access logs from S3,
and (opt-in) the API container's logs through SSM Run Command. Everything lands in a run
directory (docs/run-directory.md) through core.rundir.

All calls are read-only except the opt-in SSM one (SendCommand runs `docker logs` on the instance;
it needs the separate policy docs/iam-policy-ssm-logs.json).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import AlbprobeError
from core.rundir import RunDir, TableWriter
from probes.aws import accesslogs
from probes.aws.session import (
    BAD_CREDENTIAL_CODES,
    DENIED_CODES,
    AwsClients,
    aws_errors,
    error_code,
    translate,
)
from probes.health_poller import HealthPoller

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# target health


def health_rows(descriptions: list[dict[str, Any]], ts: float) -> list[dict[str, Any]]:
    """describe_target_health output -> rows of the run directory's health table."""
    rows = []
    for d in descriptions:
        t, h = d.get("Target", {}), d.get("TargetHealth", {})
        tid = str(t.get("Id", "?"))
        # Instances by id (as docs/run-directory.md says); IP targets as host:port.
        target = tid if tid.startswith("i-") else f"{tid}:{t.get('Port', '')}"
        rows.append(
            {
                "ts": ts,
                "target": target,
                "state": h.get("State"),
                "reason": h.get("Reason"),
                "description": h.get("Description"),
                "collector": "alb",
                "in_flight": None,
                "queued": None,
            }
        )
    return rows


class TargetHealthPoller(HealthPoller):
    """describe_target_health every ``interval`` s -> health table rows (probes/health_poller.py
    runs the loop). Errors are logged to logs/alb-health-poller.log and counted; an AccessDenied,
    bad credentials or an unknown target group stop polling, since retrying cannot help."""

    def __init__(
        self,
        session_or_clients: Any,
        target_group_arn: str,
        rundir: RunDir,
        interval: float = 10.0,
        *,
        max_samples: int = 100_000,
        clock: Any = time.time,
    ) -> None:
        if interval <= 0:
            raise AlbprobeError(f"health poll interval must be > 0, got {interval}")
        self.clients = AwsClients.of(session_or_clients)
        self.elbv2 = self.clients.elbv2  # created here: boto3 sessions are not thread-safe
        self.target_group_arn = target_group_arn
        self._clock = clock
        # One prefix per target group, so two pollers in one run never overwrite each other.
        tg_id = target_group_arn.rstrip("/").rsplit("/", 1)[-1] or "tg"
        super().__init__(
            self._sample,
            rundir,
            interval=interval,
            prefix=f"part-alb-health-{tg_id}",
            flush_rows=10_000,
            flush_seconds=60.0,
            max_samples=max_samples,
            error_log="alb-health-poller.log",
            name="alb-health-poller",
        )

    def _sample(self) -> list[dict[str, Any]]:
        ts = self._clock()
        try:
            resp = self.elbv2.describe_target_health(TargetGroupArn=self.target_group_arn)
        except Exception as exc:
            # Retrying cannot fix these: stop polling instead of filling the log.
            if error_code(exc) in DENIED_CODES | BAD_CREDENTIAL_CODES | {"TargetGroupNotFound"}:
                self.fatal = True
            raise translate(exc, what="polling target health") from None
        return health_rows(resp.get("TargetHealthDescriptions", []), ts)

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)


# ---------------------------------------------------------------------------------------------
# CloudWatch

# (metric, statistics, dimension set) - dimension sets as CloudWatch publishes them (§4).
LB = "lb"
LB_TG = "lb+tg"
METRICS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("HTTPCode_ELB_502_Count", ("Sum",), LB),
    ("HTTPCode_ELB_503_Count", ("Sum",), LB),
    ("HTTPCode_ELB_504_Count", ("Sum",), LB),
    ("HTTPCode_ELB_5XX_Count", ("Sum",), LB),
    ("HTTPCode_Target_5XX_Count", ("Sum",), LB_TG),
    ("HealthyHostCount", ("Minimum", "Average"), LB_TG),
    ("UnHealthyHostCount", ("Maximum", "Average"), LB_TG),
    ("TargetResponseTime", ("Average", "Maximum", "p99"), LB_TG),
    ("TargetConnectionErrorCount", ("Sum",), LB_TG),
    ("RequestCount", ("Sum",), LB),
    ("ActiveConnectionCount", ("Sum",), LB),
    ("RejectedConnectionCount", ("Sum",), LB),
)
NAMESPACE = "AWS/ApplicationELB"


def metric_queries(
    load_balancer_arn: str, target_group_arn: str | None, period: int, *, percentiles: bool = True
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str, str]]]:
    """The GetMetricData queries, and query id -> (metric, stat, dimensions text)."""
    lb_dim = accesslogs.parse_lb_arn(load_balancer_arn).dimension
    tg_dim = accesslogs.tg_dimension(target_group_arn) if target_group_arn else None
    queries: list[dict[str, Any]] = []
    index: dict[str, tuple[str, str, str]] = {}
    for metric, stats, dims in METRICS:
        if dims == LB_TG and tg_dim is None:
            continue
        dimensions = [{"Name": "LoadBalancer", "Value": lb_dim}]
        if dims == LB_TG:
            dimensions.append({"Name": "TargetGroup", "Value": tg_dim})
        text = ",".join(f"{d['Name']}={d['Value']}" for d in dimensions)
        for stat in stats:
            if stat.startswith("p") and not percentiles:
                continue
            qid = f"m{len(queries)}"
            queries.append(
                {
                    "Id": qid,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": metric,
                            "Dimensions": dimensions,
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
            index[qid] = (metric, stat, text)
    return queries, index


def collect_cloudwatch(
    session: Any,
    load_balancer_arn: str,
    target_group_arn: str | None,
    start: float,
    end: float,
    rundir: RunDir,
    period: int = 60,
    *,
    percentiles: bool = True,
) -> int:
    """GetMetricData for the run window -> metrics table rows; returns the number of rows."""
    if period <= 0 or period % 60:
        raise AlbprobeError(f"CloudWatch period must be a multiple of 60 s, got {period}")
    if end <= start:
        raise AlbprobeError(f"CloudWatch window is empty ({start} .. {end})")
    clients = AwsClients.of(session)
    queries, index = metric_queries(
        load_balancer_arn, target_group_arn, period, percentiles=percentiles
    )
    lo = datetime.fromtimestamp(start - start % period, tz=UTC)
    hi = datetime.fromtimestamp(end - end % period + (period if end % period else 0), tz=UTC)
    # Collecting again (re-analysis) replaces this collector's earlier parts instead of doubling.
    for stale in rundir.table_dir("metrics").glob("part-cloudwatch-*.parquet"):
        stale.unlink()
    writer = TableWriter(rundir, "metrics", prefix="part-cloudwatch", flush_rows=50_000)
    rows = 0
    token: str | None = None
    with aws_errors("reading CloudWatch metrics"):
        for _ in range(1000):  # bounded pagination
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries,
                "StartTime": lo,
                "EndTime": hi,
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            resp = clients.cloudwatch.get_metric_data(**kwargs)
            for result in resp.get("MetricDataResults", []):
                metric, stat, dims = index[result["Id"]]
                for ts, value in zip(
                    result.get("Timestamps", []), result.get("Values", []), strict=False
                ):
                    if value is None:
                        continue
                    writer.append(
                        {
                            "ts": ts.timestamp(),
                            "metric": metric,
                            "stat": stat,
                            "period": period,
                            "value": float(value),
                            "dimensions": dims,
                        }
                    )
                    rows += 1
            token = resp.get("NextToken")
            if not token:
                break
    writer.close()
    return rows


# ---------------------------------------------------------------------------------------------
# access logs from S3


def access_log_location(session: Any, load_balancer: str) -> tuple[accesslogs.S3Location, str]:
    """(bucket/prefix, ALB ARN) from the load balancer's access_logs.s3.* attributes."""
    from probes.aws.gather import find_load_balancer

    clients = AwsClients.of(session)
    arn = load_balancer
    if not load_balancer.startswith("arn:"):
        arn = find_load_balancer(clients, load_balancer)["LoadBalancerArn"]
    with aws_errors("reading the load balancer's access-log attributes"):
        attrs = clients.elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)
    a = {x["Key"]: x.get("Value", "") for x in attrs.get("Attributes", [])}
    if a.get("access_logs.s3.enabled") != "true" or not a.get("access_logs.s3.bucket"):
        raise AlbprobeError(
            f"access logs are not enabled on {arn.split('/')[-2] if '/' in arn else arn}",
            hint=f"aws elbv2 modify-load-balancer-attributes --load-balancer-arn {arn} "
            "--attributes Key=access_logs.s3.enabled,Value=true Key=access_logs.s3.bucket,"
            "Value=<bucket>; only requests after that are logged",
        )
    loc = accesslogs.S3Location(
        a["access_logs.s3.bucket"], a.get("access_logs.s3.prefix", "").strip("/")
    )
    return loc, arn


def _list(s3: Any, bucket: str, **kwargs: Any) -> Any:
    """Pages of ListObjectsV2 (bounded)."""
    token = None
    for _ in range(10_000):
        args = {"Bucket": bucket, **kwargs}
        if token:
            args["ContinuationToken"] = token
        resp = s3.list_objects_v2(**args)
        yield resp
        token = resp.get("NextContinuationToken")
        if not resp.get("IsTruncated") or not token:
            return


def _subfolders(s3: Any, bucket: str, prefix: str) -> list[str]:
    out = []
    for page in _list(s3, bucket, Prefix=prefix, Delimiter="/"):
        out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return out


def list_access_log_keys(
    session: Any,
    location: accesslogs.S3Location,
    start: float,
    end: float,
    *,
    lb: accesslogs.LoadBalancerId | None = None,
    max_keys: int = 5000,
) -> list[accesslogs.LogKey]:
    """The access-log keys whose 5-minute interval can hold requests of [start, end].

    With ``lb`` known, listing starts right at the window (StartAfter) and stops past it. Without
    it (a bare s3:// URI), accounts and regions are discovered under AWSLogs/ and every load
    balancer's files of the window's days are listed and filtered by their end-time.
    """
    clients = AwsClients.of(session)
    s3 = clients.s3
    lo, hi = accesslogs.key_window(start, end)
    found: list[accesslogs.LogKey] = []
    base = location.prefix
    with aws_errors(f"listing access logs in s3://{location.bucket}/{base}"):
        # A URI may already point inside AWSLogs/<account>/elasticloadbalancing/<region>/...
        m = re.search(r"(?:^|/)AWSLogs/(\d{12})/elasticloadbalancing/([a-z0-9-]+)(?:/|$)", base)
        root = base[: m.start()].strip("/") if m else base  # the bucket prefix before AWSLogs/
        if lb is not None:
            scopes = [(root, lb.account, lb.region)]
        elif m:
            scopes = [(root, m.group(1), m.group(2))]
        else:
            logs_root = f"{base}/AWSLogs/" if base else "AWSLogs/"
            scopes = []
            for acct in _subfolders(s3, location.bucket, logs_root):
                account = acct.rstrip("/").rsplit("/", 1)[-1]
                for reg in _subfolders(s3, location.bucket, f"{acct}elasticloadbalancing/"):
                    scopes.append((base, account, reg.rstrip("/").rsplit("/", 1)[-1]))
        for scope_base, account, region in scopes:
            for i, folder in enumerate(
                accesslogs.day_prefixes(scope_base, account, region, lo, hi)
            ):
                kwargs: dict[str, Any] = {"Prefix": folder}
                if lb is not None:
                    kwargs["Prefix"] = (
                        f"{folder}{account}_elasticloadbalancing_{region}_{lb.key_id}_"
                    )
                    if i == 0:
                        kwargs["StartAfter"] = accesslogs.start_after(
                            folder, account, region, lb.key_id, lo
                        )
                past = False
                for page in _list(s3, location.bucket, **kwargs):
                    for obj in page.get("Contents", []):
                        k = accesslogs.parse_key(obj["Key"], obj.get("Size"))
                        if k is None:
                            continue
                        if lb is not None and k.end > hi:
                            past = True  # keys of one LB sort by end-time: nothing later fits
                            break
                        if accesslogs.in_window(k, lo, hi):
                            found.append(k)
                            if len(found) > max_keys:
                                raise AlbprobeError(
                                    f"more than {max_keys} access-log files in the window",
                                    hint="narrow the time window or name the load balancer",
                                )
                    if past:
                        break
    return found


def download_object(s3: Any, bucket: str, key: str, target: Path, size: int | None) -> Path:
    """One S3 object to ``target``, through a .part file (a cut download never looks whole);
    skipped when ``target`` already has ``size`` bytes."""
    if target.exists() and size is not None and target.stat().st_size == size:
        return target  # re-analysis: already fetched
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    resp = s3.get_object(Bucket=bucket, Key=key)
    body = resp["Body"]
    with open(tmp, "wb") as fh:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            fh.write(chunk)
    os.replace(tmp, target)
    return target


def download_access_logs(
    session: Any,
    load_balancer_arn_or_s3_uri: str,
    start: float,
    end: float,
    dest: Path,
    *,
    load_balancer: str | None = None,
    max_keys: int = 5000,
    one_balancer: bool = False,
) -> list[Path]:
    """Fetch the ALB access-log files of [start, end] into ``dest`` (original keys kept).

    ``load_balancer_arn_or_s3_uri``: an ALB ARN or name (bucket and prefix come from its
    access_logs.s3.* attributes), or an s3://bucket/prefix URI (optionally narrowed to one load
    balancer with ``load_balancer``: an ARN, or the key id ``app.<name>.<id>``).
    ``one_balancer``: objects of several load balancers are refused before any download.
    """
    clients = AwsClients.of(session)
    dest = Path(dest)
    lb_id: accesslogs.LoadBalancerId | None = None
    if load_balancer_arn_or_s3_uri.startswith("s3://"):
        location = accesslogs.parse_s3_uri(load_balancer_arn_or_s3_uri)
        if load_balancer and load_balancer.startswith("arn:"):
            lb_id = accesslogs.parse_lb_arn(load_balancer)
    else:
        location, arn = access_log_location(clients, load_balancer_arn_or_s3_uri)
        lb_id = accesslogs.parse_lb_arn(arn)
    keys = list_access_log_keys(clients, location, start, end, lb=lb_id, max_keys=max_keys)
    if load_balancer and lb_id is None:
        keys = [k for k in keys if k.lb == load_balancer or k.lb.split(".")[1:2] == [load_balancer]]
    balancers = sorted({k.lb for k in keys}) if one_balancer else []
    if len(balancers) > 1:
        # a region's prefix holds every balancer's logs: refused before anything is downloaded
        # (analysis.pipeline refuses the same of local folders, from the names)
        raise AlbprobeError(
            f"{load_balancer_arn_or_s3_uri}: the window's objects are of {len(balancers)} load "
            f"balancers ({', '.join(balancers[:3])}{', ...' if len(balancers) > 3 else ''})",
            hint=f'name one: [aws] load_balancer = "{balancers[0].split(".")[1]}" in the config, '
            "or pass the load balancer's ARN instead of the s3:// prefix",
        )
    paths = []
    with aws_errors(f"downloading access logs from s3://{location.bucket}"):
        for k in keys:
            paths.append(download_object(clients.s3, location.bucket, k.key, dest / k.key, k.size))
    return paths


# ---------------------------------------------------------------------------------------------
# opt-in: gunicorn container logs through SSM Run Command

_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SSM_OUTPUT_LIMIT = 24_000  # characters of StandardOutputContent that SSM returns inline
_TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated"}


def _check_ssm_target(instance_id: str, container: str) -> None:
    if not _CONTAINER.match(container):
        raise AlbprobeError(
            f"container name {container!r} is not a Docker container name",
            hint="letters, digits, '_', '.', '-' only",
        )
    if not re.match(r"^i-[0-9a-f]{8,17}$", instance_id):
        raise AlbprobeError(f"{instance_id!r} is not an EC2 instance id", hint="e.g. i-0abc1234")


def _run_via_ssm(
    session: Any,
    instance_id: str,
    command: str,
    *,
    container: str,
    comment: str,
    timeout: float,
    poll: float,
) -> tuple[str, dict[str, Any]]:
    """One read-only shell command on the instance through SSM Run Command, waited for.
    Returns (command id, the invocation); a failed command is one AlbprobeError line."""
    clients = AwsClients.of(session)
    try:
        resp = clients.ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": [command]},
            TimeoutSeconds=max(30, int(timeout)),
            Comment=comment,
        )
    except Exception as exc:
        if error_code(exc) in ("InvalidInstanceId", "InvalidInstanceInformationFilterValue"):
            raise AlbprobeError(
                f"instance {instance_id} is not managed by SSM (or not running)",
                hint="run amazon-ssm-agent on it and attach AmazonSSMManagedInstanceCore to its "
                "instance profile, or fetch logs with `sudo docker logs` over SSH",
            ) from None
        raise translate(exc, what=f"sending `{command}` through SSM") from None
    command_id = resp["Command"]["CommandId"]
    deadline = time.monotonic() + timeout
    inv: dict[str, Any] = {}
    with aws_errors("waiting for the SSM command"):
        while True:
            try:
                inv = clients.ssm.get_command_invocation(
                    CommandId=command_id, InstanceId=instance_id
                )
            except Exception as exc:
                if error_code(exc) != "InvocationDoesNotExist":  # not registered yet: retry
                    raise
                inv = {}
            if inv.get("Status") in _TERMINAL:
                break
            if time.monotonic() >= deadline:
                raise AlbprobeError(
                    f"SSM command {command_id} on {instance_id} did not finish in {timeout:g} s",
                    hint=f"aws ssm get-command-invocation --command-id {command_id} "
                    f"--instance-id {instance_id}",
                )
            time.sleep(poll)
    if inv.get("Status") != "Success":
        err = (inv.get("StandardErrorContent") or inv.get("StandardOutputContent") or "").strip()
        raise AlbprobeError(
            f"`{command}` on {instance_id} ended {inv.get('Status')}: "
            f"{err.splitlines()[0] if err else inv.get('StatusDetails', '')}",
            hint=f"is the container named {container!r}? (sudo docker ps on the instance)",
        )
    return command_id, inv


def fetch_gunicorn_logs_via_ssm(
    session: Any,
    instance_id: str,
    since: float,
    dest: Path,
    container: str = "academy-api",
    *,
    timeout: float = 120.0,
    poll: float = 1.0,
) -> Path:
    """`docker logs <container> --since <since>` on the instance via SSM -> a log file.

    ``dest`` is a file, or a directory (then ``gunicorn-ssm.log`` inside it, as the run directory
    expects). A sidecar ``<file>.meta.json`` records the command id and whether SSM truncated the
    output (it returns at most 24,000 characters inline).
    """
    _check_ssm_target(instance_id, container)
    dest = Path(dest)
    target = dest / "gunicorn-ssm.log" if dest.is_dir() else dest
    command = f"docker logs {container} --since {int(since)} 2>&1"
    command_id, inv = _run_via_ssm(
        session,
        instance_id,
        command,
        container=container,
        comment="albprobe: read the API container's logs (read-only)",
        timeout=timeout,
        poll=poll,
    )
    out = inv.get("StandardOutputContent") or ""
    truncated = len(out) >= SSM_OUTPUT_LIMIT
    if truncated:
        log.warning(
            "SSM returned only the first %d characters of docker logs for %s; narrow --since",
            SSM_OUTPUT_LIMIT,
            instance_id,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(out, encoding="utf-8")
    meta = {
        "instance_id": instance_id,
        "container": container,
        "since": since,
        "command": command,
        "command_id": command_id,
        "truncated": truncated,
        "fetched_at": time.time(),
    }
    target.with_name(target.name + ".meta.json").write_text(json.dumps(meta, indent=2))
    return target


# ---------------------------------------------------------------------------------------------
# opt-in: gunicorn worker memory through SSM Run Command (`docker stats` + `docker top`)

_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMGT]?i?B)\s*$", re.IGNORECASE)
_UNITS = {"b": 1 / 2**20, "kb": 1e3 / 2**20, "kib": 1 / 1024, "mb": 1e6 / 2**20, "mib": 1.0}
_UNITS |= {"gb": 1e9 / 2**20, "gib": 1024.0, "tb": 1e12 / 2**20, "tib": 1024.0**2}


@dataclass(frozen=True, slots=True)
class ContainerMemory:
    """The API container's memory: per gunicorn worker (RSS, from `docker top`), the container's
    total and its limit (from `docker stats`)."""

    instance_id: str
    workers: int
    per_worker_mb: float | None
    total_mb: float | None
    limit_mb: float | None


def _mib(text: str) -> float | None:
    m = _SIZE.match(text)
    if not m:
        return None
    return float(m.group(1)) * _UNITS.get(m.group(2).lower(), float("nan"))


def parse_container_memory(instance_id: str, output: str) -> ContainerMemory:
    """Parse `docker stats --no-stream --format '{{json .}}' C; echo ---; docker top C -o
    pid,ppid,rss,args`. Workers are the gunicorn processes whose parent is the gunicorn master."""
    stats_part, _, top_part = output.partition("---")
    total = limit = None
    for line in stats_part.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                usage = json.loads(line).get("MemUsage", "")
            except ValueError:
                continue
            used, _, lim = usage.partition("/")
            total, limit = _mib(used), _mib(lim)
    procs: list[tuple[int, int, float, str]] = []
    for line in top_part.splitlines()[1:]:
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0].isdigit() and parts[1].isdigit() and parts[2].isdigit():
            procs.append((int(parts[0]), int(parts[1]), int(parts[2]) / 1024, parts[3]))
    guni = {pid for pid, _, _, args in procs if "gunicorn" in args}
    workers = [rss for pid, ppid, rss, args in procs if "gunicorn" in args and ppid in guni]
    return ContainerMemory(
        instance_id=instance_id,
        workers=len(workers),
        per_worker_mb=sum(workers) / len(workers) if workers else None,
        total_mb=total,
        limit_mb=limit,
    )


def container_memory_via_ssm(
    session: Any,
    instance_id: str,
    container: str = "academy-api",
    *,
    timeout: float = 60.0,
    poll: float = 1.0,
) -> ContainerMemory:
    """Read-only: `docker stats --no-stream` and `docker top` of the container via SSM."""
    _check_ssm_target(instance_id, container)
    command = (
        f"docker stats --no-stream --format '{{{{json .}}}}' {container}; echo ---; "
        f"docker top {container} -o pid,ppid,rss,args"
    )
    _, inv = _run_via_ssm(
        session,
        instance_id,
        command,
        container=container,
        comment="albprobe: read the API container's memory (read-only)",
        timeout=timeout,
        poll=poll,
    )
    return parse_container_memory(instance_id, inv.get("StandardOutputContent") or "")
