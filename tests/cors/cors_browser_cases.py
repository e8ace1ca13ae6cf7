"""The browser cases every real-engine CORS test runs (Chromium, Firefox, WebKit): what the
page's script calls and what the API answers, plus the script text per call. One table, so the
three engines are checked on exactly the same inputs.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

from cors_browser_harness import Reply

ALB_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
ALB_503 = (
    b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
    b"<h1>503 Service Temporarily Unavailable</h1></center></body></html>\r\n"
)
ALB_504 = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
)
GUNICORN_500 = (
    b"<html>\n  <head>\n    <title>Internal Server Error</title>\n  </head>\n  <body>\n"
    b"    <h1><p>Internal Server Error</p></h1>\n    \n  </body>\n</html>\n"
)
ALB_HEADERS = [("Server", "awselb/2.0"), ("Content-Type", "text/html")]


def alb(status: int) -> Reply:
    body, reason = {
        502: (ALB_502, "Bad Gateway"),
        503: (ALB_503, "Service Temporarily Unavailable"),
        504: (ALB_504, "Gateway Time-out"),
    }[status]
    return Reply(status, list(ALB_HEADERS), body, reason)


ACAO = [("Access-Control-Allow-Origin", "$ORIGIN")]
ACAO_CRED = ACAO + [("Access-Control-Allow-Credentials", "true"), ("Vary", "origin")]
DJANGO_PREFLIGHT_HEADERS = ACAO_CRED + [
    (
        "Access-Control-Allow-Headers",
        "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with, x-client",
    ),
    ("Access-Control-Allow-Methods", "DELETE, GET, OPTIONS, PATCH, POST, PUT"),
    ("Access-Control-Max-Age", "86400"),
]
DJANGO_PREFLIGHT = Reply(200, DJANGO_PREFLIGHT_HEADERS, b"")
JSON_WRITE = (("Content-Type", "application/json"), ("X-Client", "albprobe"))


def pre(*headers: tuple[str, str], status: int = 200, base=ACAO_CRED) -> Reply:
    return Reply(status, list(base) + list(headers), b"")


def act(*headers: tuple[str, str], status: int = 200, base=ACAO_CRED, body=b"{}") -> Reply:
    return Reply(status, list(base) + list(headers), body)


@dataclass
class Call:
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    credentials: str = "include"
    initiator: str = "fetch"
    mode: str = "cors"
    cache: str = "default"


@dataclass
class Case:
    id: str
    calls: list[Call]
    preflight: Reply | None = None
    actual: Reply | None = None
    hops: dict[str, Reply] = field(default_factory=dict)  # redirect targets: sub-path -> reply
    closed_port: bool = False  # the API URL points at a port nobody listens on
    scheme: str = "http"  # another scheme: Blink refuses before the network


def C(id, call=None, preflight=None, actual=None, **kw) -> Case:  # noqa: N802 - table helper
    calls = kw.pop("calls", None) or [call or Call()]
    return Case(id, calls, preflight, actual, **kw)


CASES: list[Case] = [
    C("simple-get-ok", actual=act()),
    C("simple-get-alb-502", actual=alb(502)),
    C("simple-get-alb-503", actual=alb(503)),
    C("simple-get-alb-504", actual=alb(504)),
    C("preflight-alb-502", Call("POST", JSON_WRITE), preflight=alb(502)),
    C("preflight-alb-503", Call("PUT", JSON_WRITE), preflight=alb(503)),
    C("preflight-alb-504", Call("DELETE"), preflight=alb(504)),
    C("json-post-ok", Call("POST", JSON_WRITE), DJANGO_PREFLIGHT, act(status=201)),
    C("json-post-actual-alb-502", Call("POST", JSON_WRITE), DJANGO_PREFLIGHT, alb(502)),
    C("json-put-actual-alb-504", Call("PUT", JSON_WRITE), DJANGO_PREFLIGHT, alb(504)),
    C("app-500-with-cors", actual=act(status=500, body=b"<h1>Server Error (500)</h1>")),
    C("app-403-with-cors", Call("PATCH", JSON_WRITE), DJANGO_PREFLIGHT, act(status=403)),
    C("gunicorn-500-no-cors", actual=Reply(500, [("Content-Type", "text/html")], GUNICORN_500)),
    C("wildcard-with-credentials", actual=act(base=[("Access-Control-Allow-Origin", "*")])),
    C(
        "wildcard-with-credentials-preflight",
        Call("PUT"),
        preflight=pre(
            ("Access-Control-Allow-Methods", "PUT"), base=[("Access-Control-Allow-Origin", "*")]
        ),
    ),
    C(
        "wildcard-omit-ok",
        Call(credentials="omit"),
        actual=act(base=[("Access-Control-Allow-Origin", "*")]),
    ),
    C(
        "wildcard-same-origin-mode-ok",
        Call(credentials="same-origin"),
        actual=act(
            base=[
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Credentials", "true"),
            ]
        ),
    ),
    C(
        "allow-methods-lowercase",
        Call("PUT"),
        preflight=pre(("Access-Control-Allow-Methods", "get, post, put")),
    ),
    C(
        "request-method-lowercase-patch",
        Call("patch"),
        preflight=pre(("Access-Control-Allow-Methods", "PATCH")),
    ),
    C(
        "request-method-lowercase-put-normalized",
        Call("put"),
        preflight=pre(("Access-Control-Allow-Methods", "PUT")),
        actual=act(),
    ),
    C(
        "header-missing-from-allow-headers",
        Call("POST", JSON_WRITE),
        preflight=pre(("Access-Control-Allow-Headers", "content-type")),
    ),
    C(
        "acao-mismatch",
        actual=act(base=[("Access-Control-Allow-Origin", "https://hakwonplus.com")]),
    ),
    C("acao-trailing-slash", actual=act(base=[("Access-Control-Allow-Origin", "$ORIGIN/")])),
    C("acao-null", actual=act(base=[("Access-Control-Allow-Origin", "null")])),
    C("acao-invalid", actual=act(base=[("Access-Control-Allow-Origin", "foo")])),
    C(
        "acao-duplicate-headers",
        actual=act(base=ACAO + ACAO + [("Access-Control-Allow-Credentials", "true")]),
    ),
    C(
        "acao-list",
        actual=act(base=[("Access-Control-Allow-Origin", "https://a.example, $ORIGIN")]),
    ),
    C("acac-missing", actual=act(base=ACAO)),
    C("acac-capitalised", actual=act(base=ACAO + [("Access-Control-Allow-Credentials", "True")])),
    C(
        "acac-duplicate",
        actual=act(("Access-Control-Allow-Credentials", "true")),
    ),
    C(
        "preflight-acao-mismatch",
        Call("PUT"),
        preflight=pre(base=[("Access-Control-Allow-Origin", "https://x.example")]),
    ),
    C(
        "preflight-acac-missing",
        Call("PUT"),
        preflight=pre(("Access-Control-Allow-Methods", "PUT"), base=ACAO),
    ),
    C(
        "preflight-404-no-cors",
        Call("PUT"),
        preflight=Reply(404, [("Content-Type", "text/html")], b"nope"),
    ),
    C("preflight-500-with-cors", Call("PUT"), preflight=pre(status=500)),
    C(
        "preflight-redirect",
        Call("PUT"),
        preflight=pre(("Location", "/c/preflight-redirect/elsewhere"), status=301),
    ),
    C("preflight-302-without-location", Call("PUT"), preflight=pre(status=302)),
    C(  # which comes first, the redirect or the missing CORS headers?
        "preflight-redirect-no-cors",
        Call("PUT"),
        preflight=Reply(301, [("Location", "/c/preflight-redirect-no-cors/elsewhere")], b""),
    ),
    C(  # the app answers OPTIONS but its CORS layer skipped it
        "preflight-200-no-cors",
        Call("POST", JSON_WRITE),
        preflight=Reply(200, [("Content-Type", "text/html")], b""),
    ),
    C(
        "allow-methods-unparsable",
        Call("PUT"),
        preflight=pre(("Access-Control-Allow-Methods", "PUT, P(T")),
    ),
    C(
        "allow-headers-unparsable",
        Call("PUT", (("X-A", "1"),)),
        preflight=pre(
            ("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Allow-Headers", "x-a, x:b")
        ),
    ),
    C(
        "methods-wildcard-with-credentials",
        Call("PUT"),
        preflight=pre(("Access-Control-Allow-Methods", "*")),
    ),
    C(
        "methods-wildcard-omit-ok",
        Call("PUT", credentials="omit"),
        preflight=pre(("Access-Control-Allow-Methods", "*"), base=ACAO),
        actual=act(base=ACAO),
    ),
    C(
        "headers-wildcard-omit-ok",
        Call("POST", JSON_WRITE, credentials="omit"),
        preflight=pre(("Access-Control-Allow-Headers", "*"), base=ACAO),
        actual=act(base=ACAO),
    ),
    C(
        "headers-wildcard-with-credentials",
        Call("POST", JSON_WRITE),
        preflight=pre(("Access-Control-Allow-Headers", "*")),
    ),
    C(
        "authorization-covered-by-wildcard",
        Call("GET", (("Authorization", "Bearer t"),), credentials="omit"),
        preflight=pre(("Access-Control-Allow-Headers", "*"), base=ACAO),
        actual=act(base=ACAO),
    ),
    C(
        "authorization-wildcard-with-credentials",
        Call("GET", (("Authorization", "Bearer t"),)),
        preflight=pre(("Access-Control-Allow-Headers", "*")),
    ),
    C("script-user-agent-no-preflight", Call("GET", (("User-Agent", "probe/1"),)), actual=act()),
    C("save-data-on-no-preflight", Call("GET", (("Save-Data", "on"),)), actual=act()),
    C("range-suffix-preflight", Call("GET", (("Range", "bytes=-5"),)), preflight=pre()),
    C("range-prefix-no-preflight", Call("GET", (("Range", "bytes=0-"),)), actual=act(status=206)),
    C(
        "text-plain-post-no-preflight",
        Call("POST", (("Content-Type", "text/plain; charset=utf-8"),)),
        actual=act(),
    ),
    C(
        "xhr-wildcard-with-credentials",
        Call(initiator="xhr"),
        actual=act(base=[("Access-Control-Allow-Origin", "*")]),
    ),
    C("xhr-acac-missing", Call(initiator="xhr"), actual=act(base=ACAO)),
    C(
        "xhr-acao-mismatch",
        Call(initiator="xhr"),
        actual=act(base=[("Access-Control-Allow-Origin", "https://x.example")]),
    ),
    C("xhr-preflight-alb-502", Call("PUT", JSON_WRITE, initiator="xhr"), preflight=alb(502)),
    C("network-refused", closed_port=True),
    C("network-refused-preflighted", Call("POST", JSON_WRITE), closed_port=True),
    C("xhr-network-refused", Call(initiator="xhr"), closed_port=True),
    C(
        "redirect-then-no-cors",
        actual=act(("Location", "/c/redirect-then-no-cors/hop"), status=302),
        hops={"hop": alb(502)},
    ),
    C(
        "redirect-then-ok",
        actual=act(("Location", "/c/redirect-then-ok/hop"), status=307),
        hops={"hop": act()},
    ),
    C(
        "redirect-location-with-credentials",
        actual=act(("Location", "http://user:pw@localhost:1/x"), status=302),
    ),
    C(
        "redirect-location-with-credentials-no-cors",
        actual=Reply(302, [("Location", "http://user:pw@localhost:1/x")], b""),
    ),
    C(
        "client-hint-dpr-no-preflight",
        Call("GET", (("DPR", "2"), ("Viewport-Width", "800"))),
        actual=act(),
    ),
    C(
        "accept-language-underscore-preflight",
        Call("GET", (("Accept-Language", "en_US"),)),
        preflight=pre(),
    ),
    C("forbidden-method-trace", Call("TRACE")),
    C("no-cors-put-refused", Call("PUT", mode="no-cors")),
    C("no-cors-opaque", Call(mode="no-cors"), actual=alb(502)),
    C("same-origin-mode-cross-origin", Call(mode="same-origin"), actual=act()),
    C("ftp-scheme", scheme="ftp"),
    C("xhr-ftp-scheme", Call(initiator="xhr"), scheme="ftp"),
    C("xhr-forbidden-method-track", Call("TRACK", initiator="xhr")),
    C(
        "preflight-cache-max-age",
        calls=[Call("PUT"), Call("PUT")],
        preflight=pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "600")),
        actual=act(),
    ),
    C(
        "preflight-cache-default-5s",
        calls=[Call("PUT"), Call("PUT")],
        preflight=pre(("Access-Control-Allow-Methods", "PUT")),
        actual=act(),
    ),
    C(
        "preflight-cache-negative-max-age",
        calls=[Call("PUT"), Call("PUT")],
        preflight=pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "-5")),
        actual=act(),
    ),
    C(
        "preflight-cache-credentials",
        calls=[Call("PUT", credentials="omit"), Call("PUT", credentials="include")],
        preflight=pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "600")),
        actual=act(),
    ),
    *(
        C(
            f"preflight-cache-{first}-then-{second}",
            calls=[Call("PUT", cache=first), Call("PUT", cache=second)],
            preflight=pre(
                ("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "600")
            ),
            actual=act(),
        )
        for first, second in (
            ("default", "no-store"),
            ("default", "reload"),
            ("default", "no-cache"),
            ("default", "force-cache"),
            ("no-store", "default"),
            ("reload", "default"),
        )
    ),
    C(
        "preflight-cache-new-header",
        calls=[Call("PUT"), Call("PUT", (("X-Client", "a"),))],
        preflight=pre(("Access-Control-Allow-Methods", "PUT"), ("Access-Control-Max-Age", "600")),
        actual=act(),
    ),
]


def js_for(url: str, call: Call) -> str:
    """A script making the call; resolves to 'status N' or the error the script sees."""
    headers = json.dumps(dict(call.headers))
    if call.initiator == "xhr":
        return (
            "new Promise(res => { const x = new XMLHttpRequest();"
            f" try {{ x.open({json.dumps(call.method)}, {json.dumps(url)}); }}"
            " catch (e) { res(String(e)); return; }"
            f" x.withCredentials = {'true' if call.credentials == 'include' else 'false'};"
            f" const h = {headers}; for (const k in h) x.setRequestHeader(k, h[k]);"
            " x.onload = () => res('status ' + x.status);"
            " x.onerror = () => res('XMLHttpRequest error event (status ' + x.status + ')');"
            " x.send(); })"
        )
    init = {
        "method": call.method,
        "headers": dict(call.headers),
        "credentials": call.credentials,
        "mode": call.mode,
        "cache": call.cache,
    }
    return (
        f"fetch({json.dumps(url)}, {json.dumps(init)})"
        ".then(r => 'status ' + r.status, e => String(e))"
    )


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
