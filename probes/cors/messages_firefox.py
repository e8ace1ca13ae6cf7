"""Firefox's CORS console messages, verbatim (dom/locales/en-US/chrome/security/security.properties),
as printed by firefox-esr 153 (checked by tests/cors/test_cors_firefox.py against a real headless
Firefox). Firefox quotes with ‘ ’ (U+2018/U+2019), names the URL on every line, appends
``Status code: N`` only where it reports a status, and after a failed preflight (or a failure on
a redirect response) prints a second "CORS request did not succeed" line.
"""

from __future__ import annotations

from probes.cors import messages as M
from probes.cors.messages import Failure

BLOCKED = (
    "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource at "
)
JS_FETCH_ERROR = "TypeError: NetworkError when attempting to fetch resource."
JS_SECURITY_ERROR = "SecurityError: The operation is insecure."

_REASONS = {
    M.ALLOW_ORIGIN_MISSING: "CORS header ‘Access-Control-Allow-Origin’ missing",
    M.ALLOW_CREDENTIALS: "expected ‘true’ in CORS header ‘Access-Control-Allow-Credentials’",
    M.ALLOW_METHODS: "Did not find method in CORS header ‘Access-Control-Allow-Methods’",
    M.PREFLIGHT_STATUS: "CORS preflight response did not succeed",
    M.PREFLIGHT_REDIRECT: "CORS request external redirect not allowed",
    M.DISABLED_SCHEME: "CORS request not http",
}
_WITH_STATUS = frozenset({M.ALLOW_ORIGIN_MISSING, M.PREFLIGHT_STATUS})


def blocked(url: str, reason: str, status: int | str | None = None) -> str:
    """One "Cross-Origin Request Blocked" line; ``status`` "(null)" when there was no response."""
    tail = "" if status is None else f" Status code: {status}."
    return f"{BLOCKED}{url}. (Reason: {reason}).{tail}"


def did_not_succeed(url: str) -> str:
    return blocked(url, "CORS request did not succeed", "(null)")


def reason(f: Failure) -> str:
    if f.step in _REASONS:
        return _REASONS[f.step]
    if f.step in (M.ALLOW_ORIGIN_MISMATCH, M.ALLOW_ORIGIN_INVALID) or (
        f.step == M.ALLOW_ORIGIN_MULTIPLE and not f.repeated
    ):
        return f"CORS header ‘Access-Control-Allow-Origin’ does not match ‘{f.param}’"
    if f.step == M.ALLOW_ORIGIN_MULTIPLE:
        return "Multiple CORS header ‘Access-Control-Allow-Origin’ not allowed"
    if f.step == M.ALLOW_METHODS_INVALID:
        return f"invalid token ‘{f.token}’ in CORS header ‘Access-Control-Allow-Methods’"
    if f.step == M.ALLOW_HEADERS_INVALID:
        return f"invalid token ‘{f.token}’ in CORS header ‘Access-Control-Allow-Headers’"
    if f.step == M.ALLOW_HEADERS:
        return (
            f"header ‘{f.param}’ is not allowed according to header"
            " ‘Access-Control-Allow-Headers’ from CORS preflight response"
        )
    raise ValueError(f"no Firefox reason for step {f.step!r}")


def lines(f: Failure) -> list[str]:
    if f.step == M.REQUEST_INVALID:
        return []
    if f.step == M.DISALLOWED_BY_MODE:
        return [f"Security Error: Content at {f.origin}/ may not load data from {f.url}."]
    if f.step in (M.NETWORK, M.REDIRECT_CREDENTIALS):
        first = [did_not_succeed(f.url)]
        return first * 2 if f.preflight else first
    if f.step == M.ALLOW_ORIGIN_WILDCARD:
        # The only reason whose URL Firefox puts in quotes.
        out = [
            f"{BLOCKED}‘{f.url}’. (Reason: Credential is not supported if the CORS header"
            " ‘Access-Control-Allow-Origin’ is ‘*’)."
        ]
    else:
        out = [blocked(f.url, reason(f), f.status if f.step in _WITH_STATUS else None)]
    if f.step == M.PREFLIGHT_REDIRECT:
        out.append(blocked(f.url, _REASONS[M.PREFLIGHT_STATUS], f.status))
    if f.preflight or f.redirect_to is not None:
        out.append(did_not_succeed(f.url))
    if f.preflight and f.redirect_to is not None and f.step != M.PREFLIGHT_REDIRECT:
        out.append(did_not_succeed(f.url))  # the redirect's own failure, then the preflight's
    return out


def js_error(f: Failure) -> str:
    if f.step == M.REQUEST_INVALID:
        if f.initiator == "xhr":
            return JS_SECURITY_ERROR
        return f"TypeError: Window.fetch: Invalid request method {f.method}."
    return M.JS_XHR_ERROR if f.initiator == "xhr" else JS_FETCH_ERROR


def authorization_wildcard_warning(url: str) -> str:
    return (
        "Cross-Origin Request Warning: The Same Origin Policy will disallow reading the remote"
        f" resource at {url} soon. (Reason: When the `Access-Control-Allow-Headers` is `*`, the"
        " `Authorization` header is not covered. To include the `Authorization` header, it must"
        " be explicitly listed in CORS header `Access-Control-Allow-Headers`)."
    )
