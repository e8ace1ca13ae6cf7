"""Request-level faults of the testbed app."""

from __future__ import annotations

import contextlib
import os
import time

from testbed.app.state import fault_on, read_state


class HangMiddleware:
    """`hang`: API requests outlive gunicorn's --timeout, so gunicorn kills the worker (its own 500)
    or the proxy gives up first (504). /health is left alone: a hung app's health checks fail only
    when every worker is stuck, as in production."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path != "/health" and fault_on("hang"):
            time.sleep(float(read_state().get("hang_seconds", 60)))
        return self.get_response(request)


TARGET_ENV = "ALBPROBE_TARGET"
BUSY_ENV = "ALBPROBE_BUSY_DIR"


class TargetMiddleware:
    """Every response names the target that made it (`X-Albprobe-Target: ip:port`), the way an app
    header passes through an ALB; the load user records it. While an API request runs, the worker
    marks itself busy (a file named by its pid), so `worker-kill` can SIGKILL a worker that is
    really serving a request, as the OOM killer does."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.target = os.environ.get(TARGET_ENV, "")
        self.busy_dir = os.environ.get(BUSY_ENV)

    def __call__(self, request):
        marker = None
        if self.busy_dir and request.path != "/health":
            marker = os.path.join(self.busy_dir, str(os.getpid()))
            with contextlib.suppress(OSError):
                open(marker, "w").close()
        try:
            response = self.get_response(request)
        finally:
            if marker:
                with contextlib.suppress(OSError):
                    os.unlink(marker)
        if self.target:
            response["X-Albprobe-Target"] = self.target
        return response
