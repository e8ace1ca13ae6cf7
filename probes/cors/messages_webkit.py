"""WebKit's (Safari's) CORS console messages, verbatim (Source/WebCore/loader/CrossOriginAccessControl.cpp
and friends), as printed by WebKitGTK 2.50 (checked by tests/cors/test_cors_webkit.py against
a real MiniBrowser). The reason line names no URL; it is followed by
``<Fetch API|XMLHttpRequest> cannot load <url> due to access control checks.``. WebKit checks a
preflight's status before its headers, so an ALB 502 on the preflight reads
``Preflight response is not successful. Status code: 502``.
"""

from __future__ import annotations

from probes.cors import messages as M
from probes.cors.messages import Failure

JS_FETCH_ERROR = "TypeError: Load failed"
JS_SECURITY_ERROR = "SecurityError: The operation is insecure."
REDIRECT_PREFIX = (
    "Cross-origin redirection to {target} denied by Cross-Origin Resource Sharing policy: "
)


def _kind(initiator: str) -> str:
    return "XMLHttpRequest" if initiator == "xhr" else "Fetch API"


def cannot_load(f: Failure) -> str:
    return f"{_kind(f.initiator)} cannot load {f.url} due to access control checks."


def reason(f: Failure) -> str:
    step = f.step
    if step in (M.ALLOW_ORIGIN_MISSING, M.ALLOW_ORIGIN_MISMATCH, M.ALLOW_ORIGIN_INVALID):
        return f"Origin {f.origin} is not allowed by Access-Control-Allow-Origin. Status code: {f.status}"
    if step == M.ALLOW_ORIGIN_MULTIPLE:
        return "Access-Control-Allow-Origin cannot contain more than one origin."
    if step == M.ALLOW_ORIGIN_WILDCARD:
        return "Cannot use wildcard in Access-Control-Allow-Origin when credentials flag is true."
    if step == M.ALLOW_CREDENTIALS:
        return 'Credentials flag is true, but Access-Control-Allow-Credentials is not "true".'
    if step in (M.PREFLIGHT_STATUS, M.PREFLIGHT_REDIRECT):
        return f"Preflight response is not successful. Status code: {f.status}"
    if step == M.ALLOW_METHODS:
        return f"Method {f.method} is not allowed by Access-Control-Allow-Methods."
    if step == M.ALLOW_HEADERS:
        return f"Request header field {f.header} is not allowed by Access-Control-Allow-Headers."
    if step == M.ALLOW_METHODS_INVALID:
        return f"Header Access-Control-Allow-Methods has an invalid value: {f.value}"
    if step == M.ALLOW_HEADERS_INVALID:
        return f"Header Access-Control-Allow-Headers has an invalid value: {f.value}"
    if step == M.REDIRECT_CREDENTIALS:
        return f"redirection URL {f.redirect_raw} has credentials"
    if step == M.DISABLED_SCHEME:
        return "Cross origin requests are only supported for HTTP."
    raise ValueError(f"no WebKit reason for step {step!r}")


def lines(f: Failure) -> list[str]:
    if f.step == M.REQUEST_INVALID:
        return []
    if f.step == M.DISALLOWED_BY_MODE:
        return [f"Fetch API cannot load {f.url}."]
    if f.step == M.NETWORK:
        # Only a failed preflight is reported; the text is libsoup's (checked for refused).
        if not f.preflight or f.net_error != "net::ERR_CONNECTION_REFUSED":
            return []
        return [f"Could not connect to {f.host}: Connection refused", cannot_load(f)]
    text = reason(f)
    if f.redirect_to is not None and not f.preflight:  # a preflight's redirect is its status
        text = REDIRECT_PREFIX.format(target=f.redirect_to) + text
    return [text, cannot_load(f)]


def js_error(f: Failure) -> str:
    if f.step == M.REQUEST_INVALID:
        if f.initiator == "xhr":
            return JS_SECURITY_ERROR
        if f.param == "no-cors-method":
            return "TypeError: Method must be GET, POST or HEAD in no-cors mode."
        return "TypeError: Method is forbidden."
    return M.JS_XHR_ERROR if f.initiator == "xhr" else JS_FETCH_ERROR
