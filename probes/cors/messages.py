"""The stable short ``step`` ids (the engine-neutral failed check the evaluator reports and the
analyzer groups by), the :class:`Failure` record each engine renders, and Chromium's CORS
console messages, verbatim (cors_error_string.cc), as printed by Chromium 156 (checked by
tests/cors/test_cors_browser.py against a real headless Chromium).

Firefox's and WebKit's wording live in messages_firefox.py and messages_webkit.py;
:func:`console_lines` / :func:`js_error` pick the engine. probes/cors/recognize.py builds the
`albprobe explain` recognizer by rendering these same functions, so there is one source of text.
"""

from __future__ import annotations

from typing import NamedTuple

# Stable step ids (docs/cors.md). Never rename: run directories store them.
NETWORK = "network"
REQUEST_INVALID = "request-invalid"
PREFLIGHT_REDIRECT = "preflight-redirect"
PREFLIGHT_STATUS = "preflight-status"
ALLOW_ORIGIN_MISSING = "allow-origin-missing"
ALLOW_ORIGIN_WILDCARD = "allow-origin-wildcard-credentials"
ALLOW_ORIGIN_MULTIPLE = "allow-origin-multiple"
ALLOW_ORIGIN_INVALID = "allow-origin-invalid"
ALLOW_ORIGIN_MISMATCH = "allow-origin-mismatch"
ALLOW_CREDENTIALS = "allow-credentials"
ALLOW_METHODS_INVALID = "allow-methods-invalid"
ALLOW_HEADERS_INVALID = "allow-headers-invalid"
ALLOW_METHODS = "allow-methods"
ALLOW_HEADERS = "allow-headers"
REDIRECT_CREDENTIALS = "redirect-credentials"
DISALLOWED_BY_MODE = "disallowed-by-mode"
DISABLED_SCHEME = "disabled-scheme"

STEPS: tuple[str, ...] = (
    NETWORK,
    REQUEST_INVALID,
    PREFLIGHT_REDIRECT,
    PREFLIGHT_STATUS,
    ALLOW_ORIGIN_MISSING,
    ALLOW_ORIGIN_WILDCARD,
    ALLOW_ORIGIN_MULTIPLE,
    ALLOW_ORIGIN_INVALID,
    ALLOW_ORIGIN_MISMATCH,
    ALLOW_CREDENTIALS,
    ALLOW_METHODS_INVALID,
    ALLOW_HEADERS_INVALID,
    ALLOW_METHODS,
    ALLOW_HEADERS,
    REDIRECT_CREDENTIALS,
    DISALLOWED_BY_MODE,
    DISABLED_SCHEME,
)

ENGINES = ("chrome", "firefox", "webkit")
ENGINE_NAMES = {
    "chrome": "Chromium (Chrome, Edge)",
    "firefox": "Firefox",
    "webkit": "WebKit (Safari)",
}


class Failure(NamedTuple):
    """One failed check, engine-neutral: what every engine's renderer needs. (A NamedTuple:
    the load user builds one per failed request, and verdicts are memoised on it.)"""

    step: str
    url: str  # as printed (the hop's URL after a redirect)
    origin: str
    initiator: str = "fetch"
    preflight: bool = False
    param: str = ""  # Chromium's failed_parameter (ACAO/ACAC value, method, lower-case header)
    status: int | None = None  # status of the response that failed the check
    redirected_from: str | None = None  # the first URL, when this hop followed a redirect
    redirect_to: str | None = None  # the failing response redirects here (credentials removed)
    redirect_raw: str | None = None  # ... and here as sent, credentials and all
    header: str = ""  # the failing request header as the script spelled it
    value: str = ""  # the whole header value that failed to parse
    token: str = ""  # the first token in it that is not a token
    repeated: bool = False  # Access-Control-Allow-Origin came on more than one header line
    method: str = ""  # the request method as sent (normalised)
    host: str = ""  # the URL's host (network errors)
    net_error: str | None = None
    scheme: str = ""


PREFLIGHT_PREFIX = "Response to preflight request doesn't pass access control check: "
_XHR_CREDENTIALS = (
    " The credentials mode of requests initiated by the XMLHttpRequest is controlled by the"
    " withCredentials attribute."
)
# fetch() only, after the multiple/invalid/mismatch origin errors (Chromium >= ~133; older
# builds printed a longer no-cors hint).
_FETCH_VALID_VALUE = " Have the server send the header with a valid value."

AUTHORIZATION_WILDCARD_WARNING = (
    "Authorization will not be covered by the wildcard symbol (*) in CORS "
    "`Access-Control-Allow-Headers` handling."
)
JS_FETCH_ERROR = "TypeError: Failed to fetch"
JS_XHR_ERROR = "XMLHttpRequest error event (status 0)"

# Steps whose preflight variant gets PREFLIGHT_PREFIX (IsPreflightError).
_PREFLIGHT_PREFIXED = frozenset(
    {
        PREFLIGHT_REDIRECT,
        PREFLIGHT_STATUS,
        ALLOW_ORIGIN_MISSING,
        ALLOW_ORIGIN_WILDCARD,
        ALLOW_ORIGIN_MULTIPLE,
        ALLOW_ORIGIN_INVALID,
        ALLOW_ORIGIN_MISMATCH,
        ALLOW_CREDENTIALS,
    }
)


def body(step: str, param: str, initiator: str) -> str:
    """The error sentence for ``step`` with Chromium's ``failed_parameter`` = ``param``."""
    xhr = initiator == "xhr"
    if step == ALLOW_ORIGIN_WILDCARD:
        text = (
            "The value of the 'Access-Control-Allow-Origin' header in the response must not be"
            " the wildcard '*' when the request's credentials mode is 'include'."
        )
        return text + _XHR_CREDENTIALS if xhr else text
    if step == ALLOW_ORIGIN_MISSING:
        return "No 'Access-Control-Allow-Origin' header is present on the requested resource."
    if step == ALLOW_ORIGIN_MULTIPLE:
        text = (
            f"The 'Access-Control-Allow-Origin' header contains multiple values '{param}',"
            " but only one is allowed."
        )
        return text if xhr else text + _FETCH_VALID_VALUE
    if step == ALLOW_ORIGIN_INVALID:
        text = f"The 'Access-Control-Allow-Origin' header contains the invalid value '{param}'."
        return text if xhr else text + _FETCH_VALID_VALUE
    if step == ALLOW_ORIGIN_MISMATCH:
        text = (
            f"The 'Access-Control-Allow-Origin' header has a value '{param}' that is not equal"
            " to the supplied origin."
        )
        return text if xhr else text + _FETCH_VALID_VALUE
    if step == ALLOW_CREDENTIALS:
        text = (
            f"The value of the 'Access-Control-Allow-Credentials' header in the response is"
            f" '{param}' which must be 'true' when the request's credentials mode is 'include'."
        )
        return text + _XHR_CREDENTIALS if xhr else text
    if step == PREFLIGHT_STATUS:
        return "It does not have HTTP ok status."
    if step == PREFLIGHT_REDIRECT:
        return "Redirect is not allowed for a preflight request."
    if step == ALLOW_METHODS_INVALID:
        return (
            "Cannot parse Access-Control-Allow-Methods response header field in preflight response."
        )
    if step == ALLOW_HEADERS_INVALID:
        return (
            "Cannot parse Access-Control-Allow-Headers response header field in preflight response."
        )
    if step == ALLOW_METHODS:
        return (
            f"Method {param} is not allowed by Access-Control-Allow-Methods in preflight response."
        )
    if step == ALLOW_HEADERS:
        return (
            f"Request header field {param} is not allowed by Access-Control-Allow-Headers in"
            " preflight response."
        )
    if step == REDIRECT_CREDENTIALS:
        return (
            f"Redirect location '{param}' contains a username and password, which is disallowed"
            " for cross-origin requests."
        )
    raise ValueError(f"no Chromium message for step {step!r}")


def cors_message(
    step: str,
    param: str,
    *,
    url: str,
    origin: str,
    initiator: str = "fetch",
    preflight: bool = False,
    redirected_from: str | None = None,
) -> str:
    """The full console line: "Access to fetch at '<url>' from origin '<origin>' has been
    blocked by CORS policy: [Response to preflight request ...: ]<body>"."""
    kind = "XMLHttpRequest" if initiator == "xhr" else "fetch"
    prefix = PREFLIGHT_PREFIX if preflight and step in _PREFLIGHT_PREFIXED else ""
    hop = f"(redirected from '{redirected_from}') " if redirected_from else ""
    return (
        f"Access to {kind} at '{url}' {hop}from origin '{origin}' has been blocked by CORS"
        f" policy: {prefix}{body(step, param, initiator)}"
    )


def request_invalid_message(problem: str, method: str, initiator: str = "fetch") -> str:
    """What the script gets when the request is refused before anything is sent."""
    if problem == "no-cors-method":
        return f"TypeError: Failed to execute 'fetch' on 'Window': '{method}' is unsupported in no-cors mode."
    return forbidden_method_message(method, initiator)


def disallowed_by_mode_message(url: str, origin: str) -> str:
    """fetch(cross-origin, {mode: "same-origin"}): Blink refuses it before the network service
    (so Chromium 156 prints this, not cors_error_string's kDisallowedByMode text)."""
    return (
        f'Fetch API cannot load {url}. Request mode is "same-origin" but the URL\'s origin is not'
        f" same as the request origin {origin}."
    )


def disabled_scheme_message(url: str, scheme: str, initiator: str = "fetch") -> str:
    """A non-HTTP(S) URL (Blink's check, printed instead of kCorsDisabledScheme)."""
    if initiator == "xhr" and scheme == "ftp":
        return "FTP is not supported."
    return f'Fetch API cannot load {url}. URL scheme "{scheme}" is not supported.'


# cors_error_string.cc bodies for errors albprobe's evaluator does not produce on its own paths
# (request-mode / scheme errors are caught by Blink first; Private Network Access preflights are
# not enforced by Chromium today). Kept verbatim so reports can quote them.
REFERENCE_ONLY = {
    "kDisallowedByMode": "Cross origin requests are not allowed by request mode.",
    "kInvalidResponse": "The response is invalid.",
    "kCorsDisabledScheme": "Cross origin requests are only supported for protocol schemes: {list}.",
    "kPreflightMissingAllowPrivateNetwork": (
        "No 'Access-Control-Allow-Private-Network' header was present in the preflight response"
        " for this private network request targeting the `{space}` address space."
    ),
    "kPreflightInvalidAllowPrivateNetwork": (
        "The 'Access-Control-Allow-Private-Network' header in the preflight response for this"
        " private network request targeting the `{space}` address space had a value of '{value}',"
        "  not 'true'."
    ),
    "kInsecurePrivateNetwork": (
        "The request client is not a secure context and the resource is in more-private address"
        " space `{space}`."
    ),
    "kInvalidPrivateNetworkAccess": (
        "Request had a target IP address space of `{target}` yet the resource is in address"
        " space `{space}`."
    ),
    "kUnexpectedPrivateNetworkAccess": (
        "Request had no target IP address space, yet the resource is in address space `{space}`."
    ),
    "kLocalNetworkAccessPermissionDenied": (
        "Permission was denied for this request to access the `{space}` address space."
    ),
    "kLocalNetworkAccessPermissionUnavailable": (
        "Unable to ask for permission to access the `{space}` IP address space."
    ),
}


def reference_message(error: str, **params: str) -> str:
    """One of REFERENCE_ONLY with its parameters filled in."""
    return REFERENCE_ONLY[error].format(**params)


def forbidden_method_message(method: str, initiator: str = "fetch") -> str:
    """The TypeError/SyntaxError a script gets for CONNECT/TRACE/TRACK (no request is sent)."""
    if initiator == "xhr":
        return (
            "SecurityError: Failed to execute 'open' on 'XMLHttpRequest':"
            f" '{method}' HTTP method is unsupported."
        )
    return (
        f"TypeError: Failed to execute 'fetch' on 'Window': '{method}' HTTP method is unsupported."
    )


def chrome_lines(f: Failure) -> list[str]:
    """Chromium's console lines for a failure (network errors and refused requests print no
    CORS line: the script gets only its TypeError)."""
    if f.step in (NETWORK, REQUEST_INVALID):
        return []
    if f.step == DISALLOWED_BY_MODE:
        return [disallowed_by_mode_message(f.url, f.origin)]
    if f.step == DISABLED_SCHEME:
        return [disabled_scheme_message(f.url, f.scheme, f.initiator)]
    return [
        cors_message(
            f.step,
            f.param,
            url=f.url,
            origin=f.origin,
            initiator=f.initiator,
            preflight=f.preflight,
            redirected_from=f.redirected_from,
        )
    ]


def chrome_js_error(f: Failure) -> str:
    if f.step == REQUEST_INVALID:
        problem = "no-cors-method" if f.param == "no-cors-method" else "forbidden-method"
        return request_invalid_message(problem, f.method, f.initiator)
    return JS_XHR_ERROR if f.initiator == "xhr" else JS_FETCH_ERROR


def console_lines(engine: str, f: Failure) -> list[str]:
    """The console lines ``engine`` prints for ``f``, in its order (``spec`` words as Chromium)."""
    if engine == "firefox":
        from probes.cors import messages_firefox

        return messages_firefox.lines(f)
    if engine == "webkit":
        from probes.cors import messages_webkit

        return messages_webkit.lines(f)
    return chrome_lines(f)


def js_error(engine: str, f: Failure) -> str:
    """What the page's script gets: the rejected fetch's error (or the XHR error event)."""
    if engine == "firefox":
        from probes.cors import messages_firefox

        return messages_firefox.js_error(f)
    if engine == "webkit":
        from probes.cors import messages_webkit

        return messages_webkit.js_error(f)
    return chrome_js_error(f)


def render(engine: str, f: Failure) -> tuple[tuple[str, ...], str]:
    """(console lines, script error) for ``f`` in ``engine``'s words."""
    return tuple(console_lines(engine, f)), js_error(engine, f)


def authorization_wildcard_warning(engine: str, url: str) -> str | None:
    """What each engine says when `Access-Control-Allow-Headers: *` covers Authorization on a
    request without credentials: Chromium a DevTools issue (this text), Firefox a console
    warning, WebKit nothing (it lets `*` cover Authorization silently)."""
    if engine == "firefox":
        from probes.cors import messages_firefox

        return messages_firefox.authorization_wildcard_warning(url)
    if engine == "webkit":
        return None
    return AUTHORIZATION_WILDCARD_WARNING
