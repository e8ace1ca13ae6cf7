"""The replay plan's contract: written by analysis/replay_plan.py (offline, from ALB access logs),
read by probes/loadgen/replay.py (inside Locust) and analysis/replay_compare.py.

The plan is one Parquet file, one row per log line of the window (sent or not), sorted by
``offset_s``; only rows whose ``action`` is ``send`` are sent.
"""

from __future__ import annotations

# Columns of plan.parquet, in order.
PLAN_COLUMNS: tuple[str, ...] = (
    "line",  # 1-based line number in the window (arrival order); clones share their line's
    "clone",  # 0 = the logged line, 1.. = --scale clones
    "offset_s",  # seconds from the window start to the request's arrival at the ALB (clone jitter in)
    "action",  # one of ACTIONS
    "kind",  # "preflight" (an OPTIONS line) or "actual"
    "method",  # the logged method (OPTIONS for preflights)
    "path",  # path + query as sent: secret-looking query values replaced
    "preflight_for",  # a preflight's Access-Control-Request-Method (the client's next call there)
    "engine",  # chromium | firefox | webkit | other (from the user agent)
    "lane",  # one simulated connection: the log's client:port (clones get their own)
    "last_in_lane",  # the lane's last sent line: its connection is free after it
    "target_ms",  # the logged target processing time (ms; NULL when the target sent nothing)
    "elb_status",  # the logged status the client got
    "target_status",  # the logged target status (NULL: the ALB generated the response)
    "latency_ms",  # request + target + response processing time, logged (-1 parts left out)
    "redacted",  # names of the query parameters whose values were replaced (comma-separated)
)
ACTIONS: tuple[str, ...] = (
    "send",
    "skip-write",  # POST/PUT/PATCH/DELETE: no body in ALB logs (see --allow-writes)
    "not-forwarded",  # the ALB answered itself without a target (malformed, rejected request)
    "filtered",  # left out by --paths
    "beyond-limit",  # left out by --limit
)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Query parameters whose values are never replayed as logged (substring, case-insensitive).
SECRET_PARAMS: tuple[str, ...] = ("token", "key", "signature", "password", "session", "code")
REDACTED = "albprobe-redacted"
# The testbed's catch-all route sleeps this many milliseconds (the logged target time); only the
# testbed reads it, and the replay sends it only to the testbed.
SLEEP_HEADER = "X-Albprobe-Replay-Sleep-Ms"
# The user agent's engine -> the browser whose CORS rules judge the responses ([browser] cors_mode).
ENGINE_MODES = {"chromium": "chrome", "firefox": "firefox", "webkit": "webkit"}
