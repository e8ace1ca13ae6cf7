"""Table-driven tests of the pure evaluator: every Chromium message, every chrome/spec
difference. Messages are the ones headless Chromium 156 printed (test_cors_browser.py)."""

from __future__ import annotations

import pytest

from probes.cors import (
    STEPS,
    CorsRequest,
    HttpResponse,
    cors_unsafe_headers,
    evaluate,
    evaluate_actual,
    evaluate_preflight,
    needs_preflight,
    preflight_headers,
    redirected_request,
)
from probes.cors.messages import AUTHORIZATION_WILDCARD_WARNING, PREFLIGHT_PREFIX

URL = "https://api.hakwonplus.com/api/items"
ORIGIN = "https://hakwonplus.com"
FETCH = f"Access to fetch at '{URL}' from origin '{ORIGIN}' has been blocked by CORS policy: "
XHR = (
    f"Access to XMLHttpRequest at '{URL}' from origin '{ORIGIN}' has been blocked by CORS policy: "
)
VALID = " Have the server send the header with a valid value."
XHR_CRED = (
    " The credentials mode of requests initiated by the XMLHttpRequest is controlled by the"
    " withCredentials attribute."
)
MISSING = "No 'Access-Control-Allow-Origin' header is present on the requested resource."
WILDCARD = (
    "The value of the 'Access-Control-Allow-Origin' header in the response must not be the"
    " wildcard '*' when the request's credentials mode is 'include'."
)


def acac(value: str) -> str:
    return (
        f"The value of the 'Access-Control-Allow-Credentials' header in the response is '{value}'"
        " which must be 'true' when the request's credentials mode is 'include'."
    )


ACAO = ("Access-Control-Allow-Origin", ORIGIN)
CRED = ("Access-Control-Allow-Credentials", "true")
ALB_502 = HttpResponse(
    502,
    (("Server", "awselb/2.0"), ("Content-Type", "text/html")),
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
)
JSON = (("Content-Type", "application/json"), ("X-Client", "web"))


def R(status: int = 200, *headers: tuple[str, str]) -> HttpResponse:  # noqa: N802
    return HttpResponse(status, tuple(headers))


OK_PRE = R(
    200,
    ACAO,
    CRED,
    ("Access-Control-Allow-Methods", "DELETE, GET, OPTIONS, PATCH, POST, PUT"),
    ("Access-Control-Allow-Headers", "accept, authorization, content-type, x-client"),
)
OK_ACT = R(200, ACAO, CRED)

# (id, request kwargs, preflight, actual, mode, step, message or None, warnings)
TABLE = [
    # --- passes
    ("simple-get-pass", {}, None, OK_ACT, "chrome", None, None, ()),
    (
        "json-post-pass",
        {"method": "POST", "headers": JSON},
        OK_PRE,
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    ("app-500-with-cors-passes", {}, None, R(500, ACAO, CRED), "chrome", None, None, ()),
    (
        "app-404-with-cors-passes",
        {"method": "PUT"},
        OK_PRE,
        R(404, ACAO, CRED),
        "chrome",
        None,
        None,
        (),
    ),
    (
        "wildcard-omit-pass",
        {"credentials": "omit"},
        None,
        R(200, ("Access-Control-Allow-Origin", "*")),
        "chrome",
        None,
        None,
        (),
    ),
    (
        "wildcard-same-origin-mode-pass",
        {"credentials": "same-origin"},
        None,
        R(200, ("Access-Control-Allow-Origin", "*"), CRED),
        "spec",
        None,
        None,
        (),
    ),
    (
        "omit-ignores-acac",
        {"credentials": "omit"},
        None,
        R(200, ACAO, ("Access-Control-Allow-Credentials", "false")),
        "chrome",
        None,
        None,
        (),
    ),
    (
        "acao-whitespace-trimmed",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", f"  {ORIGIN} "), CRED),
        "chrome",
        None,
        None,
        (),
    ),
    (
        "lowercase-put-normalized",
        {"method": "put"},
        R(200, ACAO, CRED, ("Access-Control-Allow-Methods", "PUT")),
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    (
        "methods-wildcard-omit",
        {"method": "PUT", "credentials": "omit"},
        R(200, ACAO, ("Access-Control-Allow-Methods", "*")),
        R(200, ACAO),
        "chrome",
        None,
        None,
        (),
    ),
    (
        "headers-wildcard-omit",
        {"method": "POST", "headers": JSON, "credentials": "omit"},
        R(200, ACAO, ("Access-Control-Allow-Headers", "*")),
        R(200, ACAO),
        "spec",
        None,
        None,
        (),
    ),
    (
        "allow-list-empty-items",
        {"method": "PUT"},
        R(200, ACAO, CRED, ("Access-Control-Allow-Methods", "PUT,,")),
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    (
        "allow-methods-repeated-headers-join",
        {"method": "PUT"},
        R(
            200,
            ACAO,
            CRED,
            ("Access-Control-Allow-Methods", "GET"),
            ("access-control-allow-methods", "PUT"),
        ),
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    (
        "allow-headers-case-insensitive",
        {"method": "POST", "headers": JSON},
        R(200, ACAO, CRED, ("Access-Control-Allow-Headers", "Content-Type, X-CLIENT")),
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    (
        "safelisted-method-needs-no-listing",
        {"method": "POST", "headers": (("X-A", "1"),)},
        R(
            200,
            ACAO,
            CRED,
            ("Access-Control-Allow-Methods", "PUT"),
            ("Access-Control-Allow-Headers", "x-a"),
        ),
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    # --- Allow-Origin / Allow-Credentials on the actual response
    ("alb-502-actual", {}, None, ALB_502, "chrome", "allow-origin-missing", FETCH + MISSING, ()),
    (
        "wildcard-credentials",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", "*"), CRED),
        "chrome",
        "allow-origin-wildcard-credentials",
        FETCH + WILDCARD,
        (),
    ),
    (
        "xhr-wildcard-credentials",
        {"initiator": "xhr"},
        None,
        R(200, ("Access-Control-Allow-Origin", "*")),
        "chrome",
        "allow-origin-wildcard-credentials",
        XHR + WILDCARD + XHR_CRED,
        (),
    ),
    (
        "multiple-values-duplicated",
        {},
        None,
        R(200, ACAO, ACAO, CRED),
        "chrome",
        "allow-origin-multiple",
        FETCH
        + f"The 'Access-Control-Allow-Origin' header contains multiple values '{ORIGIN}, {ORIGIN}', but only one is allowed."
        + VALID,
        (),
    ),
    (
        "multiple-values-xhr",
        {"initiator": "xhr"},
        None,
        R(200, ("Access-Control-Allow-Origin", "https://a.com https://b.com")),
        "chrome",
        "allow-origin-multiple",
        XHR
        + "The 'Access-Control-Allow-Origin' header contains multiple values 'https://a.com https://b.com', but only one is allowed.",
        (),
    ),
    (
        "invalid-value",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", "foo")),
        "chrome",
        "allow-origin-invalid",
        FETCH
        + "The 'Access-Control-Allow-Origin' header contains the invalid value 'foo'."
        + VALID,
        (),
    ),
    (
        "invalid-empty-value",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", "")),
        "chrome",
        "allow-origin-invalid",
        FETCH + "The 'Access-Control-Allow-Origin' header contains the invalid value ''." + VALID,
        (),
    ),
    (
        "null-value",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", "null"), CRED),
        "chrome",
        "allow-origin-mismatch",
        FETCH
        + "The 'Access-Control-Allow-Origin' header has a value 'null' that is not equal to the supplied origin."
        + VALID,
        (),
    ),
    (
        "trailing-slash",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", ORIGIN + "/"), CRED),
        "chrome",
        "allow-origin-mismatch",
        FETCH
        + f"The 'Access-Control-Allow-Origin' header has a value '{ORIGIN}/' that is not equal to the supplied origin."
        + VALID,
        (),
    ),
    (
        "http-twin",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", "http://hakwonplus.com"), CRED),
        "spec",
        "allow-origin-mismatch",
        FETCH
        + "The 'Access-Control-Allow-Origin' header has a value 'http://hakwonplus.com' that is not equal to the supplied origin."
        + VALID,
        (),
    ),
    (
        "case-differs",
        {},
        None,
        R(200, ("Access-Control-Allow-Origin", "https://HAKWONPLUS.com"), CRED),
        "chrome",
        "allow-origin-mismatch",
        FETCH
        + "The 'Access-Control-Allow-Origin' header has a value 'https://HAKWONPLUS.com' that is not equal to the supplied origin."
        + VALID,
        (),
    ),
    (
        "xhr-mismatch-no-suffix",
        {"initiator": "xhr"},
        None,
        R(200, ("Access-Control-Allow-Origin", "https://x.com")),
        "chrome",
        "allow-origin-mismatch",
        XHR
        + "The 'Access-Control-Allow-Origin' header has a value 'https://x.com' that is not equal to the supplied origin.",
        (),
    ),
    ("acac-missing", {}, None, R(200, ACAO), "chrome", "allow-credentials", FETCH + acac(""), ()),
    (
        "acac-True",
        {},
        None,
        R(200, ACAO, ("Access-Control-Allow-Credentials", "True")),
        "spec",
        "allow-credentials",
        FETCH + acac("True"),
        (),
    ),
    (
        "acac-duplicated",
        {},
        None,
        R(200, ACAO, CRED, CRED),
        "chrome",
        "allow-credentials",
        FETCH + acac("true, true"),
        (),
    ),
    (
        "xhr-acac-missing",
        {"initiator": "xhr"},
        None,
        R(200, ACAO),
        "chrome",
        "allow-credentials",
        XHR + acac("") + XHR_CRED,
        (),
    ),
    # --- preflight: origin/credentials before status
    (
        "preflight-alb-502",
        {"method": "POST", "headers": JSON},
        ALB_502,
        None,
        "chrome",
        "allow-origin-missing",
        FETCH + PREFLIGHT_PREFIX + MISSING,
        (),
    ),
    (
        "preflight-404-no-acao",
        {"method": "PUT"},
        R(404),
        None,
        "chrome",
        "allow-origin-missing",
        FETCH + PREFLIGHT_PREFIX + MISSING,
        (),
    ),
    (
        "preflight-500-with-cors",
        {"method": "PUT"},
        R(500, ACAO, CRED),
        None,
        "chrome",
        "preflight-status",
        FETCH + PREFLIGHT_PREFIX + "It does not have HTTP ok status.",
        (),
    ),
    (
        "preflight-wildcard-credentials",
        {"method": "PUT"},
        R(200, ("Access-Control-Allow-Origin", "*")),
        None,
        "chrome",
        "allow-origin-wildcard-credentials",
        FETCH + PREFLIGHT_PREFIX + WILDCARD,
        (),
    ),
    (
        "preflight-mismatch",
        {"method": "PUT"},
        R(200, ("Access-Control-Allow-Origin", "https://x.com")),
        None,
        "chrome",
        "allow-origin-mismatch",
        FETCH
        + PREFLIGHT_PREFIX
        + "The 'Access-Control-Allow-Origin' header has a value 'https://x.com' that is not equal to the supplied origin."
        + VALID,
        (),
    ),
    (
        "preflight-multiple",
        {"method": "PUT"},
        R(200, ("Access-Control-Allow-Origin", "a,b")),
        None,
        "chrome",
        "allow-origin-multiple",
        FETCH
        + PREFLIGHT_PREFIX
        + "The 'Access-Control-Allow-Origin' header contains multiple values 'a,b', but only one is allowed."
        + VALID,
        (),
    ),
    (
        "preflight-invalid",
        {"method": "PUT"},
        R(200, ("Access-Control-Allow-Origin", "https://")),
        None,
        "chrome",
        "allow-origin-invalid",
        FETCH
        + PREFLIGHT_PREFIX
        + "The 'Access-Control-Allow-Origin' header contains the invalid value 'https://'."
        + VALID,
        (),
    ),
    (
        "preflight-acac-missing",
        {"method": "PUT"},
        R(200, ACAO),
        None,
        "chrome",
        "allow-credentials",
        FETCH + PREFLIGHT_PREFIX + acac(""),
        (),
    ),
    (
        "preflight-redirect-chrome",
        {"method": "PUT"},
        R(301, ("Location", "/elsewhere")),
        None,
        "chrome",
        "preflight-redirect",
        FETCH + PREFLIGHT_PREFIX + "Redirect is not allowed for a preflight request.",
        (),
    ),
    (
        "preflight-redirect-spec-cors-check-first",
        {"method": "PUT"},
        R(301, ("Location", "/elsewhere")),
        None,
        "spec",
        "allow-origin-missing",
        FETCH + PREFLIGHT_PREFIX + MISSING,
        (),
    ),
    (
        "preflight-redirect-spec-status",
        {"method": "PUT"},
        R(307, ACAO, CRED, ("Location", "/x")),
        None,
        "spec",
        "preflight-status",
        FETCH + PREFLIGHT_PREFIX + "It does not have HTTP ok status.",
        (),
    ),
    (
        "preflight-302-without-location",
        {"method": "PUT"},
        R(302, ACAO, CRED),
        None,
        "chrome",
        "preflight-status",
        FETCH + PREFLIGHT_PREFIX + "It does not have HTTP ok status.",
        (),
    ),
    (
        "xhr-preflight-alb",
        {"method": "PUT", "initiator": "xhr"},
        ALB_502,
        None,
        "chrome",
        "allow-origin-missing",
        XHR + PREFLIGHT_PREFIX + MISSING,
        (),
    ),
    # --- Allow-Methods / Allow-Headers (no preflight prefix)
    (
        "methods-unparsable",
        {"method": "PUT"},
        R(200, ACAO, CRED, ("Access-Control-Allow-Methods", "PUT, P(T")),
        None,
        "chrome",
        "allow-methods-invalid",
        FETCH
        + "Cannot parse Access-Control-Allow-Methods response header field in preflight response.",
        (),
    ),
    (
        "headers-unparsable",
        {"method": "PUT", "headers": (("X-A", "1"),)},
        R(
            200,
            ACAO,
            CRED,
            ("Access-Control-Allow-Methods", "PUT"),
            ("Access-Control-Allow-Headers", "x-a, x:b"),
        ),
        None,
        "chrome",
        "allow-headers-invalid",
        FETCH
        + "Cannot parse Access-Control-Allow-Headers response header field in preflight response.",
        (),
    ),
    (
        "method-lowercase-listed",
        {"method": "PUT"},
        R(200, ACAO, CRED, ("Access-Control-Allow-Methods", "get, post, put")),
        None,
        "chrome",
        "allow-methods",
        FETCH + "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response.",
        (),
    ),
    (
        "method-lowercase-patch",
        {"method": "patch"},
        R(200, ACAO, CRED, ("Access-Control-Allow-Methods", "PATCH")),
        None,
        "spec",
        "allow-methods",
        FETCH
        + "Method patch is not allowed by Access-Control-Allow-Methods in preflight response.",
        (),
    ),
    (
        "methods-wildcard-credentials",
        {"method": "PUT"},
        R(200, ACAO, CRED, ("Access-Control-Allow-Methods", "*")),
        None,
        "chrome",
        "allow-methods",
        FETCH + "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response.",
        (),
    ),
    (
        "header-missing",
        {"method": "POST", "headers": JSON},
        R(200, ACAO, CRED, ("Access-Control-Allow-Headers", "content-type")),
        None,
        "chrome",
        "allow-headers",
        FETCH
        + "Request header field x-client is not allowed by Access-Control-Allow-Headers in preflight response.",
        (),
    ),
    (
        "headers-wildcard-credentials",
        {"method": "POST", "headers": JSON},
        R(200, ACAO, CRED, ("Access-Control-Allow-Headers", "*")),
        None,
        "chrome",
        "allow-headers",
        FETCH
        + "Request header field content-type is not allowed by Access-Control-Allow-Headers in preflight response.",
        (),
    ),
    (
        "range-suffix-needs-listing",
        {"headers": (("Range", "bytes=-500"),)},
        R(200, ACAO, CRED),
        None,
        "chrome",
        "allow-headers",
        FETCH
        + "Request header field range is not allowed by Access-Control-Allow-Headers in preflight response.",
        (),
    ),
    # --- chrome vs spec differences
    (
        "authorization-wildcard-chrome-warns",
        {"headers": (("Authorization", "Bearer t"),), "credentials": "omit"},
        R(200, ("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Headers", "*")),
        R(200, ("Access-Control-Allow-Origin", "*")),
        "chrome",
        None,
        None,
        (AUTHORIZATION_WILDCARD_WARNING,),
    ),
    (
        "authorization-wildcard-spec-fails",
        {"headers": (("Authorization", "Bearer t"),), "credentials": "omit"},
        R(200, ("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Headers", "*")),
        R(200, ("Access-Control-Allow-Origin", "*")),
        "spec",
        "allow-headers",
        FETCH
        + "Request header field authorization is not allowed by Access-Control-Allow-Headers in preflight response.",
        (),
    ),
    (
        "authorization-listed-explicitly-spec",
        {"headers": (("Authorization", "Bearer t"),), "credentials": "omit"},
        R(
            200,
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Headers", "*, Authorization"),
        ),
        R(200, ("Access-Control-Allow-Origin", "*")),
        "spec",
        None,
        None,
        (),
    ),
    (
        "spec-authorization-checked-before-other-headers",
        {"headers": (("Authorization", "t"), ("X-A", "1"))},
        R(200, ACAO, CRED, ("Access-Control-Allow-Headers", "content-type")),
        None,
        "spec",
        "allow-headers",
        FETCH
        + "Request header field authorization is not allowed by Access-Control-Allow-Headers in preflight response.",
        (),
    ),
    (
        "user-agent-chrome-no-preflight",
        {"headers": (("User-Agent", "probe/1"),)},
        None,
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    (
        "user-agent-spec-preflight",
        {"headers": (("User-Agent", "probe/1"),)},
        R(200, ACAO, CRED),
        None,
        "spec",
        "allow-headers",
        FETCH
        + "Request header field user-agent is not allowed by Access-Control-Allow-Headers in preflight response.",
        (),
    ),
    (
        "save-data-chrome-no-preflight",
        {"headers": (("Save-Data", "on"),)},
        None,
        OK_ACT,
        "chrome",
        None,
        None,
        (),
    ),
    (
        "save-data-spec-preflight",
        {"headers": (("Save-Data", "on"),)},
        R(200, ACAO, CRED),
        None,
        "spec",
        "allow-headers",
        FETCH
        + "Request header field save-data is not allowed by Access-Control-Allow-Headers in preflight response.",
        (),
    ),
    (
        "forced-preflight-spec-defaults-method",
        {"method": "PUT", "force_preflight": True},
        R(200, ACAO, CRED),
        OK_ACT,
        "spec",
        None,
        None,
        (),
    ),
    (
        "forced-preflight-chrome-needs-method",
        {"method": "PUT", "force_preflight": True},
        R(200, ACAO, CRED),
        OK_ACT,
        "chrome",
        "allow-methods",
        FETCH + "Method PUT is not allowed by Access-Control-Allow-Methods in preflight response.",
        (),
    ),
    # --- redirects of the actual request, network, invalid request
    (
        "redirect-location-credentials",
        {},
        None,
        R(302, ACAO, CRED, ("Location", "https://u:p@api.hakwonplus.com/x")),
        "chrome",
        "redirect-credentials",
        FETCH
        + "Redirect location '' contains a username and password, which is disallowed for cross-origin requests.",
        (),
    ),
    (
        "redirect-without-acao",
        {},
        None,
        R(302, ("Location", "https://u:p@x.com/")),
        "chrome",
        "allow-origin-missing",
        FETCH + MISSING,
        (),
    ),
    ("network-actual", {}, None, None, "chrome", "network", "TypeError: Failed to fetch", ()),
    (
        "network-preflight-xhr",
        {"method": "PUT", "initiator": "xhr"},
        None,
        None,
        "chrome",
        "network",
        "XMLHttpRequest error event (status 0)",
        (),
    ),
    (
        "forbidden-method",
        {"method": "TRACE"},
        None,
        OK_ACT,
        "chrome",
        "request-invalid",
        "TypeError: Failed to execute 'fetch' on 'Window': 'TRACE' HTTP method is unsupported.",
        (),
    ),
    (
        "no-cors-put-refused",
        {"method": "PUT", "mode": "no-cors"},
        None,
        OK_ACT,
        "chrome",
        "request-invalid",
        "TypeError: Failed to execute 'fetch' on 'Window': 'PUT' is unsupported in no-cors mode.",
        (),
    ),
    (
        "no-cors-opaque-passes",
        {"mode": "no-cors", "headers": (("X-A", "1"),)},
        None,
        ALB_502,
        "spec",
        None,
        None,
        (
            "no-cors request: the response is opaque (the script sees status 0 and no body or headers)",
        ),
    ),
    (
        "same-origin-mode-cross-origin",
        {"mode": "same-origin"},
        None,
        OK_ACT,
        "chrome",
        "disallowed-by-mode",
        f'Fetch API cannot load {URL}. Request mode is "same-origin" but the URL\'s origin is not same as the request origin {ORIGIN}.',
        (),
    ),
    (
        "ftp-scheme",
        {"url": "ftp://files.hakwonplus.com/a"},
        None,
        None,
        "chrome",
        "disabled-scheme",
        'Fetch API cannot load ftp://files.hakwonplus.com/a. URL scheme "ftp" is not supported.',
        (),
    ),
    (
        "ftp-scheme-xhr",
        {"url": "ftp://files.hakwonplus.com/a", "initiator": "xhr"},
        None,
        None,
        "spec",
        "disabled-scheme",
        "FTP is not supported.",
        (),
    ),
]


@pytest.mark.parametrize(
    "req_kw,preflight,actual,mode,step,message,warnings",
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_verdict(req_kw, preflight, actual, mode, step, message, warnings) -> None:
    req = CorsRequest(req_kw.pop("url", URL), ORIGIN, **req_kw)
    v = evaluate(req, preflight, actual, mode)
    assert (v.ok, v.step, v.message, v.warnings) == (step is None, step, message, warnings)
    if step is not None:
        assert v.phase in ("preflight", "actual")
    assert v.preflight_sent == needs_preflight(req, mode)


def test_table_size_and_coverage() -> None:
    assert len(TABLE) >= 40
    covered = {row[5] for row in TABLE}
    assert set(STEPS) <= covered, set(STEPS) - covered
    for mode in ("chrome", "spec"):
        assert sum(row[4] == mode for row in TABLE) >= 8


def test_reference_only_chromium_strings() -> None:
    """cors_error_string.cc texts the evaluator never emits on its own paths (Blink answers
    mode/scheme errors first; PNA is not enforced), kept verbatim for reports."""
    from probes.cors.messages import REFERENCE_ONLY, reference_message

    assert reference_message("kDisallowedByMode") == (
        "Cross origin requests are not allowed by request mode."
    )
    assert reference_message("kInvalidResponse") == "The response is invalid."
    assert reference_message("kCorsDisabledScheme", list="http, https") == (
        "Cross origin requests are only supported for protocol schemes: http, https."
    )
    assert reference_message("kPreflightMissingAllowPrivateNetwork", space="loopback") == (
        "No 'Access-Control-Allow-Private-Network' header was present in the preflight response"
        " for this private network request targeting the `loopback` address space."
    )
    assert reference_message(
        "kPreflightInvalidAllowPrivateNetwork", space="private", value="yes"
    ).endswith("had a value of 'yes',  not 'true'.")  # two spaces, as in Chromium
    assert reference_message("kInsecurePrivateNetwork", space="local") == (
        "The request client is not a secure context and the resource is in more-private address"
        " space `local`."
    )
    assert reference_message("kInvalidPrivateNetworkAccess", target="public", space="private") == (
        "Request had a target IP address space of `public` yet the resource is in address space"
        " `private`."
    )
    assert "no target IP address space" in reference_message(
        "kUnexpectedPrivateNetworkAccess", space="private"
    )
    assert "Permission was denied" in reference_message(
        "kLocalNetworkAccessPermissionDenied", space="loopback"
    )
    assert "Unable to ask for permission" in reference_message(
        "kLocalNetworkAccessPermissionUnavailable", space="local"
    )
    assert len(REFERENCE_ONLY) == 10


def test_network_verdict_names_the_net_error() -> None:
    req = CorsRequest(URL, ORIGIN, "POST", JSON)
    v = evaluate(req, None, None, preflight_error=ConnectionRefusedError(111, "refused"))
    assert (v.step, v.phase, v.net_error) == ("network", "preflight", "net::ERR_CONNECTION_REFUSED")
    v = evaluate(CorsRequest(URL, ORIGIN), None, None, actual_error=TimeoutError())
    assert (v.phase, v.net_error) == ("actual", "net::ERR_TIMED_OUT")


def test_preflight_phase_vs_actual_phase_for_the_same_alb_page() -> None:
    req = CorsRequest(URL, ORIGIN, "POST", JSON)
    on_preflight = evaluate(req, ALB_502, None)
    on_actual = evaluate(req, OK_PRE, ALB_502)
    assert on_preflight.step == on_actual.step == "allow-origin-missing"
    assert (on_preflight.phase, on_actual.phase) == ("preflight", "actual")
    assert PREFLIGHT_PREFIX in on_preflight.message and PREFLIGHT_PREFIX not in on_actual.message


def test_preflight_cache_hit_skips_preflight_evaluation() -> None:
    req = CorsRequest(URL, ORIGIN, "PUT")
    v = evaluate(req, None, OK_ACT, preflight_skipped=True)
    assert v.ok and not v.preflight_sent


def test_same_origin_request_is_not_cors() -> None:
    req = CorsRequest("https://hakwonplus.com/api", ORIGIN, "DELETE", JSON)
    assert not needs_preflight(req)
    assert evaluate(req, None, R(502)).ok
    assert not evaluate_actual(req, None).ok  # but a network failure still fails


def test_evaluate_preflight_and_actual_directly() -> None:
    req = CorsRequest(URL, ORIGIN, "PUT", JSON)
    assert evaluate_preflight(req, OK_PRE).ok and evaluate_preflight(req, OK_PRE).preflight_sent
    assert not evaluate_actual(req, ALB_502).ok


def test_headers_as_mapping_and_case_insensitive_names() -> None:
    resp = HttpResponse(
        200, {"ACCESS-CONTROL-ALLOW-ORIGIN": ORIGIN, "access-control-allow-credentials": "true"}
    )  # type: ignore[arg-type]
    assert evaluate_actual(CorsRequest(URL, ORIGIN), resp).ok


def test_message_url_is_canonical() -> None:
    req = CorsRequest("HTTPS://API.hakwonplus.com:443?q=1#frag", ORIGIN + "/")
    v = evaluate_actual(req, ALB_502)
    assert v.message.startswith(
        "Access to fetch at 'https://api.hakwonplus.com/?q=1#frag' from origin 'https://hakwonplus.com' "
    )


def test_redirect_followed_then_evaluated_with_redirected_from() -> None:
    req = CorsRequest(URL, ORIGIN)
    first = R(302, ACAO, CRED, ("Location", "/api/other"))
    assert evaluate_actual(req, first).ok
    hop = redirected_request(req, first)
    assert hop is not None and hop.url == "https://api.hakwonplus.com/api/other"
    assert hop.origin == ORIGIN  # same-origin hop on the API: origin not tainted
    v = evaluate_actual(hop, ALB_502)
    assert v.message == (
        "Access to fetch at 'https://api.hakwonplus.com/api/other' (redirected from "
        f"'{URL}') from origin '{ORIGIN}' has been blocked by CORS policy: {MISSING}"
    )
    cross = redirected_request(req, R(307, ACAO, CRED, ("Location", "https://cdn.example/x")))
    assert cross is not None and cross.origin == "null"
    post = redirected_request(CorsRequest(URL, ORIGIN, "POST"), R(302, ("Location", "/y")))
    assert post is not None and post.method == "GET"
    assert redirected_request(req, OK_ACT) is None


@pytest.mark.parametrize(
    "method,headers,mode,expected",
    [
        ("GET", (), "chrome", False),
        ("HEAD", (), "chrome", False),
        ("post", (), "chrome", False),  # normalized to POST
        ("PUT", (), "chrome", True),
        ("DELETE", (), "chrome", True),
        ("patch", (), "chrome", True),
        ("POST", (("Content-Type", "application/json"),), "chrome", True),
        ("POST", (("Content-Type", "text/plain;charset=utf-8"),), "chrome", False),
        ("POST", (("Content-Type", " multipart/form-data; boundary=x "),), "chrome", False),
        ("POST", (("Content-Type", "application/x-www-form-urlencoded"),), "spec", False),
        ("POST", (("Content-Type", 'text/plain; charset="a(b"'),), "chrome", True),  # unsafe byte
        ("POST", (("Content-Type", "text /plain"),), "chrome", True),
        ("GET", (("Accept", "application/json"),), "chrome", False),
        ("GET", (("Accept", "a@b"),), "chrome", True),
        ("GET", (("Accept", "a" * 129),), "chrome", True),  # > 128 bytes
        ("GET", (("Accept-Language", "ko-KR,ko;q=0.9"),), "chrome", False),
        ("GET", (("Accept-Language", "en_US"),), "chrome", True),
        ("GET", (("Content-Language", "de-DE"),), "spec", False),
        ("GET", (("Range", "bytes=0-"),), "chrome", False),
        ("GET", (("Range", "bytes=0-99"),), "chrome", False),
        ("GET", (("Range", "bytes=-5"),), "chrome", True),
        ("GET", (("Range", "bytes=5-1"),), "chrome", True),
        ("GET", (("Range", "bytes=0-1,3-4"),), "chrome", True),
        ("GET", (("X-Client", "a"),), "chrome", True),
        ("GET", (("Authorization", "Bearer x"),), "chrome", True),
        ("GET", (("Cookie", "a=b"),), "spec", False),  # forbidden: dropped, no preflight
        ("GET", (("Sec-Foo", "1"), ("Proxy-Foo", "1")), "spec", False),
        ("GET", (("X-HTTP-Method-Override", "TRACE"),), "chrome", False),  # forbidden
        ("GET", (("X-HTTP-Method-Override", "PATCH"),), "chrome", True),
        ("GET", (("User-Agent", "x"),), "chrome", False),
        ("GET", (("User-Agent", "x"),), "spec", True),
        ("GET", (("DPR", "2.5"), ("Width", "100"), ("Device-Memory", "8")), "chrome", False),
        ("GET", (("DPR", "abc"),), "chrome", True),
        ("GET", (("Save-Data", "off"),), "chrome", True),
        ("GET", (("DPR", "2"),), "spec", True),
    ],
)
def test_needs_preflight(method, headers, mode, expected) -> None:
    assert needs_preflight(CorsRequest(URL, ORIGIN, method, headers), mode) is expected


def test_request_headers_value_is_sorted_lowercase_deduplicated() -> None:
    req = CorsRequest(
        URL,
        ORIGIN,
        "PUT",
        (
            ("X-Z", "1"),
            ("Content-Type", "application/json"),
            ("x-z", "2"),
            ("X-A", "3"),
            ("Cookie", "c"),
        ),
    )
    assert cors_unsafe_headers(req) == ("content-type", "x-a", "x-z")
    acrh = dict(preflight_headers(req))["Access-Control-Request-Headers"]
    assert acrh == "content-type,x-a,x-z"


def test_safelisted_values_over_1024_bytes_become_unsafe() -> None:
    from probes.cors.requestside import unsafe_header_names

    # Each value <= 128 bytes, so each header alone is safelisted ...
    values = {
        "accept": "a" * 128,
        "accept-language": "b" * 128,
        "content-language": "c" * 128,
        "content-type": "text/plain;" + "d" * 117,
        "range": "bytes=0-" + "9" * 120,
        "dpr": "1" * 128,  # Chromium-only safelisted client hints make > 1 KiB reachable
        "width": "2" * 128,
        "viewport-width": "3" * 128,
        "device-memory": "4" * 128,
    }
    hdrs = tuple(values.items())
    assert all(unsafe_header_names((h,), "chrome") == () for h in hdrs)
    # ... but together they exceed 1024 bytes, so all of them become CORS-unsafe.
    assert sum(len(v) for v in values.values()) > 1024
    assert unsafe_header_names(hdrs, "chrome") == tuple(sorted(values))
    # A repeated name is combined ("a, b") before the 128-byte rule applies.
    assert unsafe_header_names((("Accept", "a" * 100), ("Accept", "b" * 100))) == ("accept",)


def test_preflight_headers_are_what_chromium_sends() -> None:
    req = CorsRequest(URL, ORIGIN, "patch", JSON + (("Cookie", "s=1"), ("Authorization", "t")))
    hs = preflight_headers(req, user_agent="UA")
    assert hs == [
        ("Accept", "*/*"),
        ("Access-Control-Request-Method", "patch"),
        ("Access-Control-Request-Headers", "authorization,content-type,x-client"),
        ("Origin", ORIGIN),
        ("User-Agent", "UA"),
        ("Sec-Fetch-Mode", "cors"),
        ("Sec-Fetch-Site", "same-site"),
        ("Sec-Fetch-Dest", "empty"),
        ("Referer", ORIGIN + "/"),
        ("Accept-Language", "en-US,en;q=0.9"),
    ]
    assert not any(n.lower() in ("cookie", "authorization") for n, _ in hs)
    assert not any(n.lower().startswith("sec-ch-") for n, _ in hs)  # no client hints on it
    simple = dict(
        preflight_headers(CorsRequest("http://localhost:9/x", "http://127.0.0.1:8", "PUT"))
    )
    assert "Access-Control-Request-Headers" not in simple
    assert simple["Sec-Fetch-Site"] == "cross-site"


def test_actual_headers_drop_forbidden_and_add_cookie_only_with_credentials() -> None:
    from probes.cors import actual_headers

    req = CorsRequest(URL, ORIGIN, "POST", JSON + (("Host", "evil"), ("User-Agent", "x")))
    hs = actual_headers(req, user_agent="UA", cookie="s=1")
    names = [n.lower() for n, _ in hs]
    assert "host" not in names and ("user-agent", "UA") in [(n.lower(), v) for n, v in hs]
    assert ("Origin", ORIGIN) in hs and ("Cookie", "s=1") in hs
    omit = CorsRequest(URL, ORIGIN, "GET", credentials="omit")
    assert "Cookie" not in dict(actual_headers(omit, cookie="s=1"))


def test_chromium_actual_request_order_client_hints_and_storage_access() -> None:
    """As Chromium 156 put them on the wire (tests/cors/test_cors_browser.py compares every case
    with the real browser): Blink's header map first (script headers, User-Agent, UA client
    hints), then Accept, Origin, Sec-Fetch-*, Referer, Accept-Language, Cookie; Range last."""
    from probes.cors import actual_headers

    req = CorsRequest(URL, ORIGIN, "POST", JSON + (("Range", "bytes=0-1"),))
    names = [n for n, _ in actual_headers(req, user_agent="UA", cookie="s=1")]
    assert names == [
        "sec-ch-ua-platform", "User-Agent", "sec-ch-ua", "Content-Type", "sec-ch-ua-mobile",
        "X-Client", "Accept", "Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest",
        "Referer", "Accept-Language", "Cookie", "Range",
    ]  # fmt: skip
    cross = CorsRequest("https://api.example.net/x", ORIGIN, credentials="include")
    names = [n for n, _ in actual_headers(cross)]
    assert names.index("Sec-Fetch-Storage-Access") == names.index("Sec-Fetch-Dest") + 1
    # client hints only to a secure URL (https, or loopback); storage access only credentialed
    # and cross-site (api.hakwonplus.com is same-site with hakwonplus.com)
    plain = CorsRequest("http://api.example.net/x", "http://app.example.org", credentials="omit")
    names = [n.lower() for n, _ in actual_headers(plain)]
    assert not any(n.startswith("sec-ch-") for n in names)
    assert "sec-fetch-storage-access" not in names
    same_site = [n.lower() for n, _ in actual_headers(CorsRequest(URL, ORIGIN))]
    assert "sec-fetch-storage-access" not in same_site and "sec-ch-ua" in same_site


def test_bad_request_fields_are_rejected() -> None:
    with pytest.raises(ValueError):
        CorsRequest(URL, ORIGIN, credentials="yes")
    with pytest.raises(ValueError):
        CorsRequest(URL, ORIGIN, initiator="img")
    with pytest.raises(ValueError):
        evaluate(CorsRequest(URL, ORIGIN), None, OK_ACT, mode="lynx")
