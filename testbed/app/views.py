"""Endpoints: /health, a fast JSON read, a slow read (?ms=, sleeping: I/O-bound), a CPU-bound read
(?ms= of CPU time), and a JSON write that browsers preflight."""

from __future__ import annotations

import json
import os
import time

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

MAX_SLOW_MS = 600_000
MAX_CPU_MS = 10_000


def health(request):
    return HttpResponse("ok", content_type="text/plain")


def fast(request):
    return JsonResponse({"ok": True, "pid": os.getpid()})


def _ms(request, default: str, most: int) -> int | None:
    try:
        return min(max(int(request.GET.get("ms", default)), 0), most)
    except ValueError:
        return None


def slow(request):
    ms = _ms(request, "200", MAX_SLOW_MS)
    if ms is None:
        return JsonResponse({"error": "ms must be an integer"}, status=400)
    time.sleep(ms / 1000)
    return JsonResponse({"ok": True, "slept_ms": ms, "pid": os.getpid()})


def cpu(request):
    """Burn ``ms`` of this thread's CPU time (not wall time: a busy machine stretches the wall
    time, the CPU cost stays the same): the CPU-bound endpoint that capacity tuning contrasts
    with the sleeping one."""
    ms = _ms(request, "50", MAX_CPU_MS)
    if ms is None:
        return JsonResponse({"error": "ms must be an integer"}, status=400)
    end = time.thread_time() + ms / 1000
    n = 0
    while time.thread_time() < end:
        n += sum(i * i for i in range(500))
    return JsonResponse({"ok": True, "cpu_ms": ms, "pid": os.getpid()})


@csrf_exempt
def items(request):
    if request.method == "GET":
        return JsonResponse({"items": [{"id": 1, "title": "first"}]})
    if request.method == "DELETE":
        return HttpResponse(status=204)
    if request.content_type != "application/json":
        return JsonResponse({"error": "Content-Type must be application/json"}, status=415)
    try:
        payload = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        return JsonResponse({"error": "body is not JSON"}, status=400)
    status = 201 if request.method == "POST" else 200
    return JsonResponse({"ok": True, "method": request.method, "item": payload}, status=status)
