"""Real-browser check of the evaluator: headless Chromium on one loopback origin calls an API on
another (127.0.0.1:<page> -> localhost:<api>, so no Private/Local Network Access rules apply:
both are loopback). For every case the test asserts that the evaluator's verdict, failing step
message and preflight prediction equal what Chromium did and printed to its console.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field

import pytest
from cors_browser_harness import ApiServer, Chromium, PageServer, Reply, find_chromium

from probes.attribution import attribute
from probes.cors import (
    CorsRequest,
    HttpResponse,
    PreflightCache,
    evaluate,
    evaluate_actual,
    needs_preflight,
    preflight_headers,
    redirected_request,
)
from probes.cors.messages import AUTHORIZATION_WILDCARD_WARNING

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = find_chromium()

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


def _js(url: str, call: Call) -> str:
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


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@dataclass
class Outcome:
    js: list[str]
    expected: list  # CorsVerdict per call
    predicted_preflight: list[bool]
    seen_options: list[int]  # OPTIONS requests the server saw after each call
    console: list[str]
    net_errors: list[str]
    request_headers_ok: list[str]  # problems with what Chromium sent vs preflight_headers()
    issues: list[str]
    all_console: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser_outcomes() -> dict[str, Outcome]:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (scripts/bootstrap.sh test installs Debian chromium)"
        )
    return run_cases(CHROMIUM, CASES)


def run_cases(chromium: str, cases: list[Case]) -> dict[str, Outcome]:
    """Run every case in one browser page, in order; return what happened per case."""
    page, api = PageServer(), ApiServer()
    browser = Chromium(chromium)
    outcomes: dict[str, Outcome] = {}
    try:
        origin = f"http://127.0.0.1:{page.port}"
        browser.open_page(origin + "/")
        cache = PreflightCache()
        for case in cases:
            if case.preflight:
                api.replies[(case.id, "OPTIONS")] = case.preflight
            if case.actual:
                api.replies[(case.id, "ACTUAL")] = case.actual
            for sub, reply in case.hops.items():
                api.replies[(case.id, f"ACTUAL:{sub}")] = reply
            host = f"localhost:{_closed_port() if case.closed_port else api.port}"
            url = f"{case.scheme}://{host}/c/{case.id}"
            out = Outcome([], [], [], [], [], [], [], [])
            issues_before = len(browser.issues())
            for call in case.calls:
                req = CorsRequest(
                    url,
                    origin,
                    call.method,
                    call.headers,
                    call.credentials,
                    call.initiator,
                    mode=call.mode,
                    cache=call.cache,
                )
                skipped = cache.allows(req, time.monotonic())
                out.predicted_preflight.append(needs_preflight(req) and not skipped)
                n_seen = len(api.seen.get(case.id, []))
                out.js.append(browser.evaluate(_js(url, call)))
                seen = api.seen.get(case.id, [])[n_seen:]
                options = [s for s in seen if s.method == "OPTIONS"]
                actuals = [s for s in seen if s.method != "OPTIONS"]
                out.seen_options.append(len(options))
                pre_resp = (
                    HttpResponse(case.preflight.status, tuple(options[0].reply_headers))
                    if options
                    else None
                )
                if options:  # what Chromium sent on the OPTIONS vs what we would send
                    ours = dict(preflight_headers(req))
                    theirs = dict(options[0].headers)
                    for name in (
                        "Access-Control-Request-Method",
                        "Access-Control-Request-Headers",
                        "Origin",
                        "Accept",
                        "Sec-Fetch-Mode",
                    ):
                        if ours.get(name) != theirs.get(name):
                            out.request_headers_ok.append(
                                f"{name}: ours {ours.get(name)!r} chromium {theirs.get(name)!r}"
                            )
                    if "Access-Control-Request-Private-Network" in theirs:  # PNA/LNA kicked in
                        out.request_headers_ok.append("chromium sent a Private Network preflight")
                    if "Cookie" in theirs:
                        out.request_headers_ok.append("chromium sent a Cookie on the preflight")
                replies = [case.actual] + list(case.hops.values())
                act_resps = [
                    HttpResponse(r.status, tuple(s.reply_headers), r.body)
                    for r, s in zip(replies, actuals, strict=False)
                ]
                error = "ConnectionRefusedError" if case.closed_port else None
                verdict = evaluate(
                    req,
                    pre_resp,
                    act_resps[0] if act_resps else None,
                    preflight_skipped=skipped,
                    preflight_error=error,
                    actual_error=error,
                )
                hop_req, i = req, 0
                while verdict.ok and i + 1 < len(act_resps) and act_resps[i].is_redirect:
                    hop_req = redirected_request(hop_req, act_resps[i])
                    i += 1
                    verdict = evaluate_actual(hop_req, act_resps[i])
                if verdict.ok and pre_resp is not None and not skipped:
                    cache.store(req, pre_resp, time.monotonic())
                out.expected.append(verdict)
            if any(v.warnings for v in out.expected):
                deadline = time.monotonic() + 2
                while len(browser.issues()) == issues_before and time.monotonic() < deadline:
                    time.sleep(0.02)
            out.issues = [
                i.get("details", {}).get("deprecationIssueDetails", {}).get("type", i.get("code"))
                for i in browser.issues()[issues_before:]
            ]
            outcomes[case.id] = out
        time.sleep(0.3)  # let the last console events arrive
        entries = browser.log_entries()
        for case in cases:
            path = f"/c/{case.id}"
            out = outcomes[case.id]
            mentions = re.compile(re.escape(path) + r"(?![\w-])")
            out.console = [  # the page's console lines about this case's URL
                e["text"]
                for e in entries
                if e.get("source") == "javascript" and mentions.search(e["text"])
            ]
            out.all_console = [e["text"] for e in entries if e.get("source") == "javascript"]
            out.net_errors = [
                e["text"]
                for e in entries
                if e.get("source") == "network" and path in (e.get("url") or "")
            ]
    finally:
        browser.close()
        api.close()
        page.close()
    return outcomes


def test_enough_browser_cases() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evaluator_matches_chromium(case: Case, browser_outcomes: dict[str, Outcome]) -> None:
    out = browser_outcomes[case.id]
    assert out.request_headers_ok == []
    for i, (js, verdict) in enumerate(zip(out.js, out.expected, strict=True)):
        browser_ok = js.startswith("status ")
        assert verdict.ok == browser_ok, (i, js, verdict)
        if not case.closed_port:  # nobody listens there to count preflights
            assert out.predicted_preflight[i] == (out.seen_options[i] > 0), (i, out.seen_options)
        if verdict.ok:
            status = (
                0
                if case.calls[i].mode == "no-cors"
                else (case.hops.get("hop") or case.actual).status
            )
            assert js == f"status {status}"
        elif verdict.step == "request-invalid":
            assert js == verdict.message
        elif verdict.step == "network":
            assert js == verdict.message
            assert f"Failed to load resource: {verdict.net_error}" in out.net_errors
        else:
            assert js == (
                "XMLHttpRequest error event (status 0)"
                if case.calls[i].initiator == "xhr"
                else "TypeError: Failed to fetch"
            )
    failures = [
        v.message for v in out.expected if not v.ok and v.step not in ("network", "request-invalid")
    ]
    path = re.compile(re.escape(f"/c/{case.id}") + r"(?![\w-])")
    assert out.console == [m for m in failures if path.search(m)]
    for m in failures:  # messages that do not name the URL ("FTP is not supported.")
        if not path.search(m):
            assert m in out.all_console
    if any(AUTHORIZATION_WILDCARD_WARNING in v.warnings for v in out.expected):
        assert "AuthorizationCoveredByWildcard" in out.issues


def test_alb_pages_in_browser_cases_attribute_to_proxy() -> None:
    for case in CASES:
        for reply in (case.preflight, case.actual):
            if reply is not None and reply.headers == ALB_HEADERS:
                a = attribute(reply.status, reply.headers, reply.body)
                assert (a.source, a.evidence) == ("proxy", "server: awselb/2.0")
                assert attribute(reply.status, [], reply.body).source == "proxy"
