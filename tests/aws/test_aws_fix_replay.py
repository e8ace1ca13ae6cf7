"""Every fix `albprobe check` prints is run, as printed, with the real AWS CLI against the moto
server, for every broken topology the AWS tests build; then the check runs again and must pass.

A fix that is not an `aws` command is an instruction for something outside AWS (gunicorn's
settings on the targets); the replay applies it where albprobe reads it (the Expected settings).
Any other fix that cannot be replayed fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from probes.aws.checks import Expected, Finding, run_checks
from probes.aws.gather import gather
from probes.aws.report import fixes
from tests.aws.aws_topology import BROKEN, REGION, Broken

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI (pip install awscli) is missing")

# The placeholders a fix may hold: values albprobe cannot know because the operator chooses them,
# and what the replay supplies in their place.
OPERATOR_CHOICES: dict[str, tuple[str, Callable[[Broken], str]]] = {
    "LOG_BUCKET": (
        "which S3 bucket (with a policy for ELB log delivery) keeps the access logs",
        lambda case: case.prod.bucket,
    ),
    "INSTANCE_ID": (
        "which instance runs the API: an empty target group names none",
        lambda case: case.prod.instance,
    ),
}
PLACEHOLDER = re.compile(r"\$\{(\w+):\?\}")


def check(clients, case: Broken, expected: Expected) -> list[Finding]:
    return run_checks(gather(clients, case.prod.lb_name, case.target_group), expected)


def cli_env(moto: str, tmp_path: Path) -> dict[str, str]:
    """The AWS CLI pointed at moto, with dummy credentials, for this test's subprocesses only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{Path(AWS).parent}{os.pathsep}{env.get('PATH', '')}",
        AWS_ENDPOINT_URL=moto,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_PAGER="",
    )
    return env


def bash(cmd: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=120)


def outside_aws(f: Finding, expected: Expected) -> Expected:
    """Apply a fix that is not an AWS command where albprobe reads its effect."""
    keepalive = re.search(r"--keep-alive (\d+)", f.remediation)
    if f.id == "alb.idle_timeout" and keepalive:  # gunicorn's setting on the targets
        return replace(expected, keepalive=float(keepalive.group(1)))
    pytest.fail(f"{f.id}: this fix cannot be replayed: {f.remediation}")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_fix_replays_and_the_check_then_passes(name, clients, moto, tmp_path):
    case = BROKEN[name](clients)
    expected = Expected(**case.expected)
    before = check(clients, case, expected)
    todo = fixes(before)
    assert todo, f"{name}: nothing to fix"
    env = cli_env(moto, tmp_path)
    for f in todo:
        cmd = f.remediation
        if not cmd.startswith("aws "):
            expected = outside_aws(f, expected)
            continue
        names = PLACEHOLDER.findall(cmd)
        assert "<" not in cmd.split("#", 1)[0], f"{f.id}: a <placeholder> is a redirect: {cmd}"
        assert set(names) <= set(OPERATOR_CHOICES), f"{f.id}: unexplained placeholder in {cmd}"
        if names:  # unset, the command refuses to run rather than send an empty value
            refused = bash(cmd, env)
            assert refused.returncode != 0 and "parameter null or not set" in refused.stderr
        values = {n: OPERATOR_CHOICES[n][1](case) for n in names}
        run = bash(cmd, {**env, **values})
        assert run.returncode == 0, f"{f.id}: {cmd}\n{run.stderr}"
    after = check(clients, case, expected)
    assert [(f.id, f.resource, f.evidence) for f in after if f.status not in ("pass", "skip")] == []
    assert fixes(after) == []
