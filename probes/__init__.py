"""Everything that touches the network or AWS: CORS evaluation, attribution, httpx probes,
boto3 checks and pollers, the run recorder."""
