"""Request-level faults of the testbed app."""

from __future__ import annotations

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
