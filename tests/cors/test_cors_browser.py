"""Real-browser check of the evaluator: headless Chromium on one loopback origin calls an API on
another (127.0.0.1:<page> -> localhost:<api>, so no Private/Local Network Access rules apply:
both are loopback). For every case the test asserts that the evaluator's verdict, failing step
message and preflight prediction equal what Chromium did and printed to its console.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import pytest
from cors_browser_cases import ALB_HEADERS, CASES, Case, js_for
from cors_browser_harness import ApiServer, Chromium, PageServer, find_chromium
from cors_engine_run import predict, register_case, too_wide, wire_differences

from probes.attribution import attribute
from probes.cors import (
    CorsRequest,
    PreflightCache,
    actual_headers,
    needs_preflight,
    preflight_headers,
)
from probes.cors.messages import AUTHORIZATION_WILDCARD_WARNING

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = find_chromium()


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
            url = register_case(api, case)
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
                out.js.append(browser.evaluate(js_for(url, call)))
                seen = api.seen.get(case.id, [])[n_seen:]
                options = [s for s in seen if s.method == "OPTIONS"]
                actuals = [s for s in seen if s.method != "OPTIONS"]
                out.seen_options.append(len(options))
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
                    if call.mode == "cors" and call.cache == "default":  # names in order
                        out.request_headers_ok += wire_differences(
                            "chrome", preflight_headers(req, "chrome"), options[0].headers
                        )
                    if "Access-Control-Request-Private-Network" in theirs:  # PNA/LNA kicked in
                        out.request_headers_ok.append("chromium sent a Private Network preflight")
                    if "Cookie" in theirs:
                        out.request_headers_ok.append("chromium sent a Cookie on the preflight")
                if actuals and call.mode == "cors" and call.cache == "default":
                    out.request_headers_ok += wire_differences(
                        "chrome", actual_headers(req, "chrome"), actuals[0].headers
                    )
                out.expected.append(
                    predict(req, case, options, actuals, cache, "chrome", skipped=skipped)
                )
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


def test_explain_recognises_every_chromium_line(browser_outcomes: dict[str, Outcome]) -> None:
    """`albprobe explain` round-trip: every CORS console line Chromium printed, and every error
    a script got, reads back as Chromium's, with the failed check the evaluator named and no
    reading its text rules out."""
    from probes.cors.recognize import recognize

    n = 0
    for case in CASES:
        out = browser_outcomes[case.id]
        for js, verdict in zip(out.js, out.expected, strict=True):
            if verdict.ok:
                continue
            printed = [line for line in out.all_console if line == verdict.message]
            script = [js] if js.startswith(("TypeError", "SecurityError")) else []
            for line in printed + script:
                matches = recognize(line)
                assert {m.engine for m in matches} == {"chrome"}, (case.id, line, matches)
                assert any(verdict.step in m.steps for m in matches), (case.id, line)
                assert too_wide(line) is None, (case.id, too_wide(line))
                n += 1
    assert n > 60
    everything = next(iter(browser_outcomes.values())).all_console  # the page's whole console
    assert everything and all(
        {m.engine for m in recognize(line)} == {"chrome"} for line in everything
    )


def test_docs_table_matches_chromium(browser_outcomes: dict[str, Outcome]) -> None:
    """docs/cors.md's Chromium column is what Chromium printed for those cases."""
    from cors_engine_run import docs_table

    for case_id, lines in docs_table("chrome").items():
        out = browser_outcomes[case_id]
        printed = [
            re.sub(
                r"localhost:\d+",
                "localhost:<api>",
                re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<page>", x),
            )
            for x in out.console
        ]
        assert printed == lines, case_id
