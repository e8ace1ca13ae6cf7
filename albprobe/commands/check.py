"""`albprobe check`: the AWS chain check that replaces check_api_alb.ps1 (read-only).

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 it could not check
(credentials, AccessDenied, throttling after retries, unknown load balancer, bad options).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    load_balancer: Annotated[
        str | None,
        typer.Option(
            "--load-balancer", "-l", help="ALB name or ARN (default: [aws] load_balancer)."
        ),
    ] = None,
    target_group: Annotated[
        str | None,
        typer.Option(
            "--target-group",
            "-t",
            help="Target group name or ARN (default: every group attached to the ALB).",
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="The API port the targets listen on (8000).")
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: ARN, config, env).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile of the shared config.")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url", help="AWS endpoint (moto/LocalStack); AWS_ENDPOINT_URL also works."
        ),
    ] = None,
    health_check_path: Annotated[
        str | None,
        typer.Option("--health-check-path", help="Expected health check path (/health)."),
    ] = None,
    health_check_port: Annotated[
        int | None,
        typer.Option(
            "--health-check-port", help="Expected health check port (default: the API port)."
        ),
    ] = None,
    matcher: Annotated[
        str | None, typer.Option("--matcher", help="Expected success codes (200).")
    ] = None,
    keepalive: Annotated[
        float | None,
        typer.Option("--keepalive", help="gunicorn --keep-alive seconds on the targets."),
    ] = None,
    worker_class: Annotated[
        str | None,
        typer.Option(
            "--worker-class", help="gunicorn worker class on the targets (sync, gthread, ...)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="albprobe.toml to read.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Walk ALB -> listeners -> target group -> targets -> security groups -> subnets/routes/NACLs
    -> instances and print each finding with its evidence and the fix command."""
    import json
    import sys

    from rich.console import Console

    from core.config import load_config
    from core.errors import ConfigError
    from probes.aws.checks import Expected, exit_code, run_checks
    from probes.aws.gather import gather, region_from_arn
    from probes.aws.report import render, to_json
    from probes.aws.session import AwsClients

    cfg = load_config(config)
    aws = cfg.aws
    lb = load_balancer or aws.load_balancer
    if not lb:
        raise ConfigError(
            "no load balancer given",
            hint="pass --load-balancer <name|ARN> or set [aws] load_balancer in albprobe.toml",
        )
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"--port: must be a TCP port (1-65535), got {port}")
    if health_check_path is not None and not health_check_path.startswith("/"):
        raise ConfigError(f"--health-check-path: must start with '/', got {health_check_path!r}")
    if keepalive is not None and keepalive < 0:
        raise ConfigError(f"--keepalive: cannot be negative ({keepalive})")
    hc = aws.health_check
    cap = cfg.capacity
    expected = Expected(
        port=port or aws.port,
        scheme=aws.scheme,
        health_check_path=health_check_path or hc.path,
        health_check_port=health_check_port or hc.port,
        matcher=matcher or hc.matcher,
        interval=int(hc.interval),
        timeout=int(hc.timeout),
        healthy_threshold=hc.healthy_threshold,
        unhealthy_threshold=hc.unhealthy_threshold,
        keepalive=cap.keepalive if keepalive is None else keepalive,
        worker_class=worker_class or cap.worker_class,
        threads=cap.threads,
        container=aws.container,
        graceful_timeout=cap.graceful_timeout,
        longest_request=cap.longest_request,
    )
    try:
        from probes.aws.checks import parse_matcher

        parse_matcher(expected.matcher)
    except ValueError:
        raise ConfigError(
            f"--matcher: cannot read {expected.matcher!r}", hint="e.g. 200, 200-299 or 200,302"
        ) from None

    region = region or aws.region or region_from_arn(lb) or region_from_arn(target_group or "")
    clients = AwsClients.from_config(aws, region=region, profile=profile, endpoint_url=endpoint_url)
    topology = gather(clients, lb, target_group or aws.target_group)
    findings = run_checks(topology, expected)
    meta = {
        "load_balancer": topology.load_balancer.name,
        "load_balancer_arn": topology.load_balancer.arn,
        "region": topology.region,
        "endpoint_url": clients.effective_endpoint,
        "expected": expected.__dict__,
    }
    if json_out:
        sys.stdout.write(json.dumps(to_json(findings, meta), indent=2) + "\n")
    else:
        render(findings, meta, Console(highlight=False))
    raise typer.Exit(exit_code(findings))
