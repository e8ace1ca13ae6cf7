"""AWS side of albprobe: the read-only chain check behind `albprobe check` (topology -> gather ->
checks -> report) and the collectors that add target health, CloudWatch metrics, ALB access logs
and (opt-in) container logs to a run directory. See docs/aws.md."""
