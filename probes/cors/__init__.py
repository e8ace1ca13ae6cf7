"""Browser-faithful CORS: the pure evaluator, the preflight cache, request-header rules."""

from probes.cors.cache import PreflightCache
from probes.cors.evaluate import (
    CorsRequest,
    CorsVerdict,
    HttpResponse,
    cors_unsafe_headers,
    evaluate,
    evaluate_actual,
    evaluate_preflight,
    needs_preflight,
    network_verdict,
    parse_max_age,
    redirected_request,
)
from probes.cors.messages import STEPS
from probes.cors.requestside import normalize_method, with_body_headers
from probes.cors.wire import CHROME_USER_AGENT, actual_headers, preflight_headers

__all__ = [
    "CHROME_USER_AGENT",
    "STEPS",
    "CorsRequest",
    "CorsVerdict",
    "HttpResponse",
    "PreflightCache",
    "actual_headers",
    "cors_unsafe_headers",
    "evaluate",
    "evaluate_actual",
    "evaluate_preflight",
    "needs_preflight",
    "network_verdict",
    "normalize_method",
    "parse_max_age",
    "preflight_headers",
    "redirected_request",
    "with_body_headers",
]
