"""Target-health reason codes in plain words (ELBv2 TargetHealthReasonEnum; listed in docs/aws.md)."""

from __future__ import annotations

REASONS: dict[str, str] = {
    "Elb.RegistrationInProgress": "the target is still being registered with the target group",
    "Elb.InitialHealthChecking": (
        "the ALB is still sending the first health checks; it is not in service until it passes "
        "the healthy threshold"
    ),
    "Target.ResponseCodeMismatch": (
        "the health check got an HTTP answer, but not the expected code (e.g. Django's 400 "
        "DisallowedHost, a 301 redirect to HTTPS, or a 404 on a wrong path)"
    ),
    "Target.Timeout": (
        "health check requests timed out: nothing answered on the health check port in time "
        "(security group / NACL dropping packets, gunicorn stuck or overloaded, container down)"
    ),
    "Target.FailedHealthChecks": (
        "the ALB could not connect to the target or the answer was malformed (connection "
        "refused: nothing listens on the port - gunicorn or the container is down)"
    ),
    "Target.NotRegistered": "the target is not registered with the target group",
    "Target.NotInUse": (
        "the target group is not used by any load balancer, or the target is in an Availability "
        "Zone that is not enabled on the ALB"
    ),
    "Target.DeregistrationInProgress": "the target is being deregistered (deregistration delay)",
    "Target.InvalidState": "the instance is stopped or terminated",
    "Target.IpUnusable": "the target IP address is reserved for the load balancer's own use",
    "Target.HealthCheckDisabled": "health checks are disabled for this target group",
    "Elb.InternalError": "the health checks failed because of an internal ALB error",
}

# What to do next, per reason (the remediation column); placeholders are filled by the check.
NEXT_STEP: dict[str, str] = {
    "Elb.RegistrationInProgress": "wait for registration to finish, then check again",
    "Elb.InitialHealthChecking": "wait interval x healthy threshold seconds, then check again",
    "Target.ResponseCodeMismatch": (
        "curl -i -H 'Host: {ip}:{port}' http://{ip}:{port}{path}  # from inside the VPC; compare "
        "the status with the matcher {matcher}"
    ),
    "Target.Timeout": (
        "on the instance: sudo docker ps; sudo docker logs --since 15m {container}; "
        "curl -m 5 http://127.0.0.1:{port}{path}; then check the security group and NACL findings"
    ),
    "Target.FailedHealthChecks": (
        "on the instance: sudo docker ps; sudo docker logs --since 15m {container} "
        "(gunicorn down, OOM-killed or in a restart loop?)"
    ),
    "Target.NotRegistered": (
        "aws elbv2 register-targets --target-group-arn {tg} --targets Id={id},Port={port}"
    ),
    "Target.NotInUse": "enable the target's Availability Zone on the ALB (see net.target_az)",
    "Target.DeregistrationInProgress": "expected during a deploy; re-register if it should serve",
    "Target.InvalidState": "aws ec2 start-instances --instance-ids {id}",
    "Target.IpUnusable": "register a different IP address",
    "Target.HealthCheckDisabled": (
        "aws elbv2 modify-target-group --target-group-arn {tg} --health-check-enabled"
    ),
    "Elb.InternalError": "retry; if it persists, open an AWS support case",
}


def explain(reason: str | None) -> str:
    if not reason:
        return ""
    return REASONS.get(reason, f"reason {reason} (not in albprobe's table)")
