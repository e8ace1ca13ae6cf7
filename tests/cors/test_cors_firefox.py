"""Real-engine check of the Firefox mode: Debian's firefox-esr, headless, driven over its own
WebDriver BiDi, runs the same cases as the Chromium test (cors_browser_cases.CASES) on one page
(127.0.0.1:<page> -> localhost:<api>). For every case the evaluator's verdict, preflight
prediction, the script's error and every console line (errors from BiDi ``log.entryAdded`` and
the console service, warnings from the console service) equal what Firefox did.
"""

from __future__ import annotations

import pytest
from cors_browser_cases import CASES, Case
from cors_browser_harness import ApiServer, PageServer
from cors_engine_run import (
    DOCS_CORS,
    EngineOutcome,
    check_case,
    check_docs_table,
    check_recognised,
    run_engine_cases,
)
from firefox_driver import Firefox, find_firefox

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

FIREFOX = find_firefox()


@pytest.fixture(scope="module")
def firefox_run() -> dict:
    if FIREFOX is None:
        pytest.skip("firefox-esr is not installed (scripts/bootstrap.sh test installs it)")
    api, page = ApiServer(), PageServer()
    browser = Firefox(FIREFOX)
    try:
        outcomes = run_engine_cases(browser, CASES, "firefox", api, page)
        bidi = browser.bidi_errors()
        version = browser.version
    finally:
        browser.close()
        api.close()
        page.close()
    return {"outcomes": outcomes, "bidi": bidi, "version": version, "ports": (api.port, page.port)}


def test_enough_firefox_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evaluator_matches_firefox(case: Case, firefox_run: dict) -> None:
    out: EngineOutcome = firefox_run["outcomes"][case.id]
    check_case(case, out)


def test_bidi_log_carries_every_error_line(firefox_run: dict) -> None:
    """BiDi's log.entryAdded and the console service report the same CORS errors."""
    outcomes = firefox_run["outcomes"]
    errors = [
        line
        for out in outcomes.values()
        for line in out.console
        if not line.startswith("Cross-Origin Request Warning")
    ]
    assert errors and sorted(firefox_run["bidi"]) == sorted(errors)


def test_explain_recognises_every_firefox_line(firefox_run: dict) -> None:
    """`albprobe explain` round-trip: each line Firefox printed (and each script error)
    reads back as Firefox's, with the failed check the evaluator named."""
    assert check_recognised("firefox", firefox_run["outcomes"]) > 60


def test_docs_table_matches_firefox(firefox_run: dict) -> None:
    """docs/cors.md's firefox column is what firefox printed, line for line."""
    console = {k: v.console for k, v in firefox_run["outcomes"].items()}
    assert check_docs_table("firefox", console, firefox_run["ports"]) >= 10
    assert firefox_run["version"].split()[-1] in DOCS_CORS.read_text(encoding="utf-8")
