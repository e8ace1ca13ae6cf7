"""`albprobe replay` on the testbed: every replayed path is answered (the catch-all route), and a
request takes its log line's target processing time (the replay's sleep header, which only the
testbed honours: a real API never sees it, the replay sends it to the testbed only)."""

from __future__ import annotations

import os
import time

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.replay import SLEEP_HEADER

MAX_SLEEP_MS = 600_000
_META = "HTTP_" + SLEEP_HEADER.upper().replace("-", "_")


def _sleep_ms(request) -> float | None:
    try:
        ms = float(request.META.get(_META, ""))
    except ValueError:
        return None
    return min(max(ms, 0.0), MAX_SLEEP_MS)


class ReplayTimeMiddleware:
    """A request carrying the sleep header lasts that long in the app: the view's own time, then
    the rest asleep (a sleeping worker, as when the original target was busy with I/O)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        ms = _sleep_ms(request)
        t0 = time.monotonic()
        response = self.get_response(request)
        if ms:
            rest = ms / 1000 - (time.monotonic() - t0)
            if rest > 0:
                time.sleep(rest)
        return response


@csrf_exempt
def catch_all(request, path: str = ""):
    """Any path the app has no route for, any method: a small JSON answer (204 for DELETE)."""
    if request.method == "DELETE":
        return HttpResponse(status=204)
    status = 201 if request.method == "POST" else 200
    return JsonResponse({"ok": True, "replayed": request.path, "pid": os.getpid()}, status=status)
