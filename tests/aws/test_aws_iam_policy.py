"""Every AWS call the code can make is in the documented IAM policy, and the policy is minimal and
read-only. The calls are found by scanning the source (AST), not by a hand-kept list: adding
`clients.ec2.describe_foo(...)` without adding ec2:DescribeFoo to docs/iam-policy.json fails here.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from probes.aws.session import SERVICES, api_operations, iam_action

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY_POLICY = ROOT / "docs" / "iam-policy.json"
SSM_POLICY = ROOT / "docs" / "iam-policy-ssm-logs.json"
PARTS_POLICY = ROOT / "docs" / "iam-policy-worker-parts.json"
SCANNED_TREES = ("probes", "albprobe", "analysis", "testbed", "locustfiles")
# Receiver names that denote a boto3 client of a service (see probes/aws/session.py).
RECEIVERS = {name: name for name in SERVICES} | {"cw": "cloudwatch", "elb": "elbv2"}
FORBIDDEN_CLIENT_METHODS = {
    "get_waiter",
    "download_file",
    "download_fileobj",
    "generate_presigned_url",
}
_AWS_MARKERS = ("boto3", "botocore", "probes.aws")


@dataclass(frozen=True)
class Call:
    path: str
    line: int
    service: str
    operation: str  # snake_case method name


@dataclass
class ScanResult:
    calls: list[Call]
    problems: list[str]


def _receiver(node: ast.expr) -> str | None:
    """The last name of the expression a method is called on: clients.ec2 -> 'ec2'."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):  # clients.client("ec2").describe_x(...)
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "client" and node.args:
            a = node.args[0]
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                return a.value
    return None


def scan_source(source: str, path: str, operations: dict[str, dict[str, str]]) -> ScanResult:
    """Find `<client>.<operation>(...)` and `<client>.get_paginator("<operation>")` calls."""
    tree = ast.parse(source, filename=path)
    uses_aws = any(m in source for m in _AWS_MARKERS)
    all_ops = {op: svc for svc, ops in operations.items() for op in ops}
    calls: list[Call] = []
    problems: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (
            isinstance(f, ast.Name)
            and f.id == "getattr"
            and node.args
            and _receiver(node.args[0]) in RECEIVERS
        ):
            problems.append(f"{path}:{node.lineno}: getattr on an AWS client hides the call")
            continue
        if not isinstance(f, ast.Attribute):
            continue
        if f.attr == "resource" and uses_aws and _receiver(f.value) in ("boto3", "session"):
            problems.append(f"{path}:{node.lineno}: boto3 resources hide their calls; use clients")
            continue
        recv = _receiver(f.value)
        service = RECEIVERS.get(recv or "")
        if service is None:
            if uses_aws and f.attr in all_ops and f.attr not in ("get_paginator",):
                problems.append(
                    f"{path}:{node.lineno}: .{f.attr}() looks like an AWS call on "
                    f"{recv!r}, which is not a known client name ({', '.join(RECEIVERS)})"
                )
            continue
        if f.attr in FORBIDDEN_CLIENT_METHODS:
            problems.append(f"{path}:{node.lineno}: {recv}.{f.attr}() is not allowed")
            continue
        if f.attr == "get_paginator":
            arg = node.args[0] if node.args else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                problems.append(f"{path}:{node.lineno}: get_paginator needs a literal name")
                continue
            op = arg.value
        elif f.attr in operations[service]:
            op = f.attr
        else:
            continue  # meta, exceptions, close(), can_paginate(), ...
        if op not in operations[service]:
            problems.append(f"{path}:{node.lineno}: {service} has no operation {op!r}")
            continue
        calls.append(Call(path, node.lineno, service, op))
    return ScanResult(calls, problems)


@pytest.fixture(scope="module")
def operations() -> dict[str, dict[str, str]]:
    return {svc: api_operations(svc) for svc in SERVICES}


def scan_repo(operations: dict[str, dict[str, str]]) -> ScanResult:
    calls: list[Call] = []
    problems: list[str] = []
    for tree in SCANNED_TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            res = scan_source(
                path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), operations
            )
            calls += res.calls
            problems += res.problems
    return ScanResult(calls, problems)


def policy_actions(path: Path) -> set[str]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    actions: set[str] = set()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow", st
        a = st["Action"]
        actions.update([a] if isinstance(a, str) else a)
    return actions


def _action(call: Call, operations: dict[str, dict[str, str]]) -> str:
    return iam_action(call.service, operations[call.service][call.operation])


def test_the_scanner_sees_the_code_calls(operations):
    res = scan_repo(operations)
    assert not res.problems, "\n".join(res.problems)
    found = {_action(c, operations) for c in res.calls}
    # A few calls the check cannot work without: if the scanner stopped seeing them, it is broken.
    for must in (
        "elasticloadbalancing:DescribeTargetHealth",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeNetworkAcls",
        "cloudwatch:GetMetricData",
        "s3:GetObject",
        "ssm:SendCommand",
    ):
        assert must in found, (must, sorted(found))


def test_every_call_is_in_the_policy(operations):
    res = scan_repo(operations)
    allowed = (
        policy_actions(READ_ONLY_POLICY) | policy_actions(SSM_POLICY) | policy_actions(PARTS_POLICY)
    )
    missing = sorted(
        {
            f"{_action(c, operations)}  ({c.path}:{c.line})"
            for c in res.calls
            if _action(c, operations) not in allowed
        }
    )
    assert not missing, "calls missing from docs/iam-policy*.json:\n" + "\n".join(missing)


def test_policies_are_minimal(operations):
    used = {_action(c, operations) for c in scan_repo(operations).calls}
    unused = (
        policy_actions(READ_ONLY_POLICY) | policy_actions(SSM_POLICY) | policy_actions(PARTS_POLICY)
    ) - used
    assert not unused, f"policy grants actions no code uses: {sorted(unused)}"


def test_main_policy_is_read_only():
    for action in policy_actions(READ_ONLY_POLICY):
        service, name = action.split(":")
        assert service != "ssm", "SSM lives in the opt-in policy"
        assert name.startswith(("Describe", "Get", "List")), action
    # Only the opt-in log fetch may run anything, and only SendCommand/GetCommandInvocation.
    assert policy_actions(SSM_POLICY) == {"ssm:SendCommand", "ssm:GetCommandInvocation"}
    # Only workers that write their own parts to S3 (opt-in) put objects, and nothing else.
    assert policy_actions(PARTS_POLICY) == {"s3:PutObject"}


def test_s3_writes_only_in_the_worker_parts_module(operations):
    for c in scan_repo(operations).calls:
        if c.service == "s3" and c.operation == "put_object":
            assert c.path == "probes/aws/parts.py", c


def test_ssm_calls_only_in_the_opt_in_collector(operations):
    for c in scan_repo(operations).calls:
        if c.service == "ssm":
            assert c.path == "probes/aws/collectors.py", c


# --- the scanner itself can fail (so the tests above are not vacuous) --------------------------


def test_scanner_flags_a_call_missing_from_the_policy(operations):
    src = "def f(clients):\n    clients.ec2.describe_flow_logs()\n    clients.elbv2.delete_load_balancer(LoadBalancerArn='x')\n"
    res = scan_source(src, "x.py", operations)
    actions = {_action(c, operations) for c in res.calls}
    assert actions == {"ec2:DescribeFlowLogs", "elasticloadbalancing:DeleteLoadBalancer"}
    assert not actions <= policy_actions(READ_ONLY_POLICY)


def test_scanner_sees_paginators_and_client_factories(operations):
    src = (
        "import boto3\n"
        "def f(session, clients):\n"
        "    clients.ec2.get_paginator('describe_vpc_endpoints')\n"
        "    session.client('s3').put_object(Bucket='b', Key='k')\n"
    )
    res = scan_source(src, "x.py", operations)
    assert {_action(c, operations) for c in res.calls} == {
        "ec2:DescribeVpcEndpoints",
        "s3:PutObject",
    }


def test_scanner_rejects_hidden_calls(operations):
    src = (
        "import boto3\n"
        "def f(session, clients, op):\n"
        "    getattr(clients.ec2, op)()\n"
        "    mystery.describe_target_health(TargetGroupArn='x')\n"
        "    boto3.resource('s3')\n"
        "    clients.ec2.get_paginator(op)\n"
        "    clients.s3.download_file('b', 'k', 'f')\n"
    )
    res = scan_source(src, "x.py", operations)
    assert len(res.problems) == 5, res.problems
