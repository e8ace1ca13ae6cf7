"""The AWS collectors of `albprobe run` against a real URL (core.collector): ALB target health
during the load, then CloudWatch, and opt-in the ALB access logs and the containers' logs via SSM.

They share one AlbResources: the load balancer and target group named by [aws], resolved once.
Each records its outcome under run.json's "aws" (docs/run-directory.md); AWS trouble is recorded
there and the run goes on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.collector import Collector, CollectorResult, RunContext, relative_files
from core.config import Config
from core.errors import AlbprobeError
from probes.aws.collectors import (
    TargetHealthPoller,
    collect_cloudwatch,
    download_access_logs,
    fetch_gunicorn_logs_via_ssm,
)
from probes.aws.session import AwsClients
from probes.health_poller import PollingCollector


def _error(exc: BaseException) -> str:
    if isinstance(exc, AlbprobeError):
        return exc.one_line()
    return f"{type(exc).__name__}: {exc}"[:300]


def instance_targets(clients: AwsClients, target_group_arn: str) -> list[str]:
    """The EC2 instance ids registered in a target group (IP and Lambda targets left out)."""
    desc = clients.elbv2.describe_target_health(TargetGroupArn=target_group_arn)
    return [
        d["Target"]["Id"]
        for d in desc["TargetHealthDescriptions"]
        if d["Target"]["Id"].startswith("i-")
    ]


class AlbResources:
    """The run's load balancer and target group from [aws], resolved on first use and shared."""

    def __init__(self, config: Config) -> None:
        self.aws = config.aws
        self.clients: AwsClients | None = None
        self.load_balancer_arn: str | None = None
        self.target_group_arn: str | None = None
        self.error: str | None = None
        self._tried = False

    @property
    def named(self) -> bool:
        return bool(self.aws.target_group or self.aws.load_balancer)

    def resolve(self) -> bool:
        """Whether a target group is known; AWS trouble is kept in ``error``, never raised."""
        if not self._tried and self.named:
            self._tried = True
            from probes.aws.gather import resolve_target_group

            try:
                clients = AwsClients.from_config(self.aws)
                lb, tg = resolve_target_group(
                    clients, self.aws.load_balancer, self.aws.target_group
                )
            except AlbprobeError as exc:
                self.error = exc.one_line()
            else:
                self.clients, self.load_balancer_arn, self.target_group_arn = clients, lb, tg
        return self.target_group_arn is not None

    def record(self) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        return {
            "load_balancer_arn": self.load_balancer_arn,
            "target_group_arn": self.target_group_arn,
        }


class AlbTargetHealthCollector(PollingCollector):
    """describe_target_health every [aws] poll_interval during the load (probes/aws/collectors)."""

    kind = "alb"

    def __init__(self, alb: AlbResources) -> None:
        super().__init__()
        self.alb = alb

    def make_poller(self, run: RunContext) -> TargetHealthPoller | None:
        if not self.alb.named:
            return None
        if not self.alb.resolve():
            run.log(f"ALB target-health poller not started: {self.alb.error}")
            return None
        tg = self.alb.target_group_arn
        assert tg is not None and self.alb.clients is not None
        interval = run.config.aws.poll_interval
        run.log(f"polling ALB target health every {interval:g}s ({tg.rsplit(':', 1)[-1]})")
        return TargetHealthPoller(self.alb.clients, tg, run.rundir, interval=interval)

    def result(self) -> CollectorResult:
        res = super().result()
        if self.poller is not None or self.alb.error:
            res.record["aws"] = self.alb.record()
        return res


class CloudWatchCollector(Collector):
    """The ALB's CloudWatch series for the run window (one minute either side), after the run."""

    name = "cloudwatch"

    def __init__(self, alb: AlbResources) -> None:
        self.alb = alb
        self.aws: dict[str, Any] = {}
        self.files: list[str] = []

    def stop(self, run: RunContext) -> None:
        if not (self.alb.resolve() and self.alb.load_balancer_arn):
            return
        try:
            self.aws["cloudwatch_rows"] = collect_cloudwatch(
                self.alb.clients,
                self.alb.load_balancer_arn,
                self.alb.target_group_arn,
                run.started_at - 60,
                time.time() + 60,
                run.rundir,
            )
        except Exception as exc:  # a collector must not cost the run its finalisation
            self.aws["cloudwatch_error"] = _error(exc)
        parts = run.rundir.table_dir("metrics").glob("part-cloudwatch-*.parquet")
        self.files = relative_files(run.rundir, parts)

    def result(self) -> CollectorResult:
        return CollectorResult(self.name, self.files, {"aws": self.aws} if self.aws else {})


class AccessLogsCollector(Collector):
    """Opt-in: the ALB access-log files of the run window from S3 into logs/alb/ after the run.
    The ALB delivers a file every 5 minutes, so the run's last minutes may not be there yet
    (`albprobe analyze --alb-logs` can fetch them later)."""

    name = "access-logs"

    def __init__(self, alb: AlbResources) -> None:
        self.alb = alb
        self.aws: dict[str, Any] = {}
        self.files: list[str] = []

    def stop(self, run: RunContext) -> None:
        if not (self.alb.resolve() and self.alb.load_balancer_arn):
            self.aws["access_logs_error"] = "no load balancer resolved (set [aws] load_balancer)"
            return
        try:
            paths = download_access_logs(
                self.alb.clients,
                self.alb.load_balancer_arn,
                run.started_at,
                time.time(),
                run.rundir.logs / "alb",
            )
        except Exception as exc:
            self.aws["access_logs_error"] = _error(exc)
            return
        self.files = relative_files(run.rundir, paths)
        self.aws["access_logs"] = len(paths)
        run.log(f"ALB access logs: fetched {len(paths)} file(s)")

    def result(self) -> CollectorResult:
        return CollectorResult(self.name, self.files, {"aws": self.aws} if self.aws else {})


class SsmLogsCollector(Collector):
    """Opt-in: `docker logs <container> --since <run start>` on each instance target through SSM
    Run Command, into logs/gunicorn-ssm-<instance>.log (the analyzer reads logs/gunicorn*.log).
    Each failure is recorded; one instance's trouble does not cost the others."""

    name = "ssm-logs"

    def __init__(self, alb: AlbResources) -> None:
        self.alb = alb
        self.aws: dict[str, Any] = {}

    def stop(self, run: RunContext) -> None:
        if not self.alb.resolve():
            self.aws["ssm_logs_error"] = (
                "no target group resolved (set [aws] load_balancer or target_group)"
            )
            return
        assert self.alb.clients is not None and self.alb.target_group_arn is not None
        try:
            instances = instance_targets(self.alb.clients, self.alb.target_group_arn)
        except Exception as exc:
            self.aws["ssm_logs_error"] = f"{type(exc).__name__}: {exc}"[:300]
            return
        fetched: list[str] = []
        errors: dict[str, str] = {}
        for iid in instances:
            try:
                path: Path = fetch_gunicorn_logs_via_ssm(
                    self.alb.clients,
                    iid,
                    run.started_at - 5,
                    run.rundir.logs / f"gunicorn-ssm-{iid}.log",
                    container=run.config.aws.container,
                )
                fetched.append(path.name)
            except Exception as exc:
                errors[iid] = _error(exc)
        self.aws["ssm_logs"] = fetched
        if errors:
            self.aws["ssm_logs_errors"] = errors
        run.log(
            f"SSM: fetched {len(fetched)} container log(s)"
            + (f", {len(errors)} failed" if errors else "")
        )

    def result(self) -> CollectorResult:
        files = [f"logs/{name}" for name in self.aws.get("ssm_logs", [])]
        return CollectorResult(self.name, files, {"aws": self.aws} if self.aws else {})
