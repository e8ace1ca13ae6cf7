"""Real-engine check of the WebKit mode: Debian's WebKitGTK MiniBrowser under xvfb-run, its
console written to stdout, runs the same cases as the Chromium test (cors_browser_cases.CASES)
on one self-driving page (127.0.0.1:<page> -> localhost:<api>). For every case the evaluator's
verdict, preflight prediction, the script's error and every console line equal what WebKit did.
"""

from __future__ import annotations

import pytest
from cors_browser_cases import CASES, Case
from cors_browser_harness import ApiServer
from cors_engine_run import (
    DOCS_CORS,
    EngineOutcome,
    check_case,
    check_docs_table,
    check_recognised,
    run_engine_cases,
)
from webkit_driver import SelfDrivingPage, WebKit, find_minibrowser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

MINIBROWSER = find_minibrowser()


@pytest.fixture(scope="module")
def webkit_run() -> dict:
    if MINIBROWSER is None:
        pytest.skip(
            "WebKitGTK MiniBrowser or xvfb-run is not installed"
            " (scripts/bootstrap.sh test installs libwebkit2gtk-4.1-0 and xvfb)"
        )
    api, page = ApiServer(), SelfDrivingPage()
    browser = WebKit(MINIBROWSER, page)
    try:
        outcomes = run_engine_cases(browser, CASES, "webkit", api, page)
        version = browser.version
    finally:
        browser.close()
        api.close()
        page.close()
    return {"outcomes": outcomes, "version": version, "ports": (api.port, page.port)}


def test_enough_webkit_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evaluator_matches_webkit(case: Case, webkit_run: dict) -> None:
    out: EngineOutcome = webkit_run["outcomes"][case.id]
    check_case(case, out)


def test_explain_recognises_every_webkit_line(webkit_run: dict) -> None:
    """`albprobe explain` round-trip: each line Webkit printed (and each script error)
    reads back as Webkit's, with the failed check the evaluator named."""
    assert check_recognised("webkit", webkit_run["outcomes"]) > 60


def test_docs_table_matches_webkit(webkit_run: dict) -> None:
    """docs/cors.md's webkit column is what webkit printed, line for line."""
    console = {k: v.console for k, v in webkit_run["outcomes"].items()}
    assert check_docs_table("webkit", console, webkit_run["ports"]) >= 10
    assert webkit_run["version"].split()[-1] in DOCS_CORS.read_text(encoding="utf-8")
