"""boto3 clients for albprobe, and AWS errors turned into one-line AlbprobeErrors (exit code 2).

Clients use the standard credential chain (env, profile, SSO, instance role), adaptive retries,
and an optional endpoint URL (moto in tests; botocore also honours AWS_ENDPOINT_URL by itself).
Code that calls AWS reaches a client as ``clients.<service>.<operation>(...)``: the IAM-policy test
finds every operation by that shape, so keep to it (no getattr, no boto3 resources, no waiters).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from core.errors import AlbprobeError

# The services albprobe talks to, by the attribute names used in code, with their IAM prefix.
SERVICES: dict[str, str] = {
    "elbv2": "elasticloadbalancing",
    "ec2": "ec2",
    "cloudwatch": "cloudwatch",
    "s3": "s3",
    "ssm": "ssm",
}
# S3's IAM action names do not follow the API names.
S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "GetBucketLocation": "s3:GetBucketLocation",
}
THROTTLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "EC2ThrottledException",
}
DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedAccess",
}
BAD_CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "InvalidAccessKeyId",
    "RequestExpired",
}
DEFAULT_MAX_ATTEMPTS = 5
POLICY_HINT = "grant it, see docs/iam-policy.json"


def iam_action(service: str, api_operation: str) -> str:
    """('elbv2', 'DescribeTargetHealth') -> 'elasticloadbalancing:DescribeTargetHealth'."""
    if service == "s3":
        return S3_ACTIONS.get(api_operation, f"s3:{api_operation}")
    return f"{SERVICES[service]}:{api_operation}"


def api_operations(service: str) -> dict[str, str]:
    """snake_case method name -> API operation name, from botocore's service model."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


class AwsClients:
    """Lazily created boto3 clients sharing one session, region, endpoint and retry policy."""

    def __init__(
        self,
        session: Any = None,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        import boto3
        import botocore.exceptions

        if session is None:
            try:
                session = boto3.Session(profile_name=profile, region_name=region)
            except botocore.exceptions.ProfileNotFound:
                raise AlbprobeError(
                    f"AWS profile {profile!r} not found",
                    hint="list them with `aws configure list-profiles`, or drop --profile",
                ) from None
        self.session = session
        self.region = region or session.region_name
        # None lets botocore apply AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> itself.
        self.endpoint_url = endpoint_url or None
        self.max_attempts = max_attempts

    @property
    def effective_endpoint(self) -> str | None:
        """The endpoint botocore will use when not AWS's own (for the report header)."""
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    @classmethod
    def from_config(
        cls,
        aws: Any,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
    ) -> AwsClients:
        """Clients for an ``[aws]`` config section; explicit arguments (CLI flags) win."""
        return cls(
            region=region or aws.region,
            profile=profile or aws.profile,
            endpoint_url=endpoint_url or aws.endpoint_url,
            max_attempts=aws.max_attempts,
        )

    @classmethod
    def of(cls, session_or_clients: Any, **kwargs: Any) -> AwsClients:
        if isinstance(session_or_clients, AwsClients):
            return session_or_clients
        return cls(session_or_clients, **kwargs)

    def client(self, service: str) -> Any:
        from botocore.config import Config

        if service not in SERVICES:
            raise ValueError(f"albprobe does not use AWS service {service!r}")
        # S3 follows bucket-region redirects itself, so an s3:// URI needs no region.
        region = self.region or ("us-east-1" if service == "s3" else None)
        if not region:
            raise AlbprobeError(
                "no AWS region configured",
                hint="pass --region, set AWS_REGION, or [aws] region in albprobe.toml",
            )
        config = Config(
            # total_max_attempts counts the first try; botocore's "max_attempts" would not.
            retries={"mode": "adaptive", "total_max_attempts": self.max_attempts},
            connect_timeout=5,
            read_timeout=30,
            user_agent_extra="albprobe",
        )
        return self.session.client(
            service, region_name=region, endpoint_url=self.endpoint_url, config=config
        )

    @cached_property
    def elbv2(self) -> Any:
        return self.client("elbv2")

    @cached_property
    def ec2(self) -> Any:
        return self.client("ec2")

    @cached_property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def ssm(self) -> Any:
        return self.client("ssm")


_NOT_AUTHORIZED = re.compile(r"not authorized to perform:?\s+([a-z0-9-]+:[A-Za-z0-9]+)")


def _operation_service(operation: str) -> str | None:
    for service in SERVICES:
        try:
            if operation in api_operations(service).values():
                return service
        except Exception:  # a missing model must not hide the real error
            continue
    return None


def translate(exc: BaseException, *, what: str = "") -> AlbprobeError:
    """Any botocore/boto3 failure -> one AlbprobeError line with a fix (exit code 2)."""
    import botocore.exceptions as bx

    where = f" while {what}" if what else ""
    if isinstance(exc, AlbprobeError):
        return exc
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AlbprobeError(
            f"no usable AWS credentials{where}",
            hint="run `aws configure` or `aws sso login`, pass --profile, or set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, bx.ProfileNotFound):
        return AlbprobeError(str(exc), hint="list profiles with `aws configure list-profiles`")
    if isinstance(exc, bx.NoRegionError):
        return AlbprobeError(
            f"no AWS region configured{where}",
            hint="pass --region, set AWS_REGION, or [aws] region in albprobe.toml",
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return AlbprobeError(
            f"cannot reach the AWS endpoint{where}: {exc}",
            hint="check the network/proxy, --region, or --endpoint-url / AWS_ENDPOINT_URL",
        )
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = str(err.get("Message", "")).strip()
        op = exc.operation_name
        service = _operation_service(op)
        action = iam_action(service, op) if service else op
        if code in DENIED_CODES:
            m = _NOT_AUTHORIZED.search(message)
            named = m.group(1) if m else action
            return AlbprobeError(
                f"AWS denied {named} ({code}){where}",
                hint=f"the caller's IAM policy lacks {named}; {POLICY_HINT}",
            )
        if code in THROTTLE_CODES:
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
            return AlbprobeError(
                f"AWS throttled {action} ({code}) after {attempts} attempt(s){where}",
                hint="retry later, or reduce concurrent AWS tooling on this account",
            )
        if code in BAD_CREDENTIAL_CODES:
            return AlbprobeError(
                f"AWS rejected the credentials ({code}) calling {action}{where}",
                hint="refresh them (`aws sso login`, new keys) or pick another --profile",
            )
        first = message.splitlines()[0] if message else ""
        return AlbprobeError(f"AWS {action} failed{where}: {code}: {first}".rstrip(": "))
    if isinstance(exc, bx.BotoCoreError):
        return AlbprobeError(f"AWS call failed{where}: {exc}")
    raise exc


@contextmanager
def aws_errors(what: str = "") -> Iterator[None]:
    """Re-raise botocore failures inside the block as one-line AlbprobeErrors."""
    import botocore.exceptions as bx

    try:
        yield
    except (bx.BotoCoreError, bx.ClientError) as exc:
        raise translate(exc, what=what) from None


def error_code(exc: BaseException) -> str | None:
    import botocore.exceptions as bx

    if isinstance(exc, bx.ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return None
