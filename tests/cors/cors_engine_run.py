"""Runs the shared browser cases (cors_browser_cases.CASES) in one real Firefox or WebKit page
and records, per case and call, what the engine did next to what albprobe's evaluator (in that
engine's mode) predicts. The Chromium test keeps its own loop (it also checks more request
headers and the DevTools issues Chromium reports) but shares register_case and predict.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cors_browser_cases import Case, closed_port, js_for
from cors_browser_harness import ApiServer, PageServer

from probes.cors import (
    CorsRequest,
    CorsVerdict,
    HttpResponse,
    PreflightCache,
    actual_headers,
    evaluate,
    evaluate_actual,
    needs_preflight,
    preflight_headers,
    redirected_request,
)

# Left to the HTTP client (probes.cors.wire): not compared.
TRANSPORT = frozenset({"host", "connection", "accept-encoding", "content-length"})
# Values that come from the machine, not the engine: WebKitGTK derives Accept-Language from the
# locale ("C" on the test machine); its place in the order is still compared.
_MACHINE_VALUES = {"webkit": frozenset({"accept-language"})}


def wire_differences(
    engine: str, ours: list[tuple[str, str]], theirs: list[tuple[str, str]]
) -> list[str]:
    """How the headers albprobe sends differ from what the engine sent: names in order, then
    values (transport headers aside)."""
    theirs = [(k, v) for k, v in theirs if k.lower() not in TRANSPORT]
    if engine == "chrome":  # headless says so in its User-Agent; albprobe sends the browser's
        theirs = [(k, v.replace("HeadlessChrome/", "Chrome/")) for k, v in theirs]
    if [k.lower() for k, _ in ours] != [k.lower() for k, _ in theirs]:
        return [f"order: ours {[k for k, _ in ours]} engine {[k for k, _ in theirs]}"]
    machine = _MACHINE_VALUES.get(engine, frozenset())
    return [
        f"{k}: ours {v!r} engine {w!r}"
        for (k, v), (_, w) in zip(ours, theirs, strict=True)
        if v != w and k.lower() not in machine
    ]


class Engine(Protocol):
    def open_page(self, url: str) -> None: ...
    def evaluate(self, expression: str, *, timeout: float = 20.0) -> Any: ...
    def mark(self, label: str) -> None: ...  # a console line that separates the cases
    def console(self) -> list[str]: ...  # the page's console lines so far, oldest first


@dataclass
class EngineOutcome:
    js: list[str] = field(default_factory=list)  # what the script saw, per call
    expected: list[CorsVerdict] = field(default_factory=list)
    predicted_preflight: list[bool] = field(default_factory=list)
    seen_options: list[int] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # this case's console lines
    request_headers: list[str] = field(default_factory=list)  # sent headers that differ
    all_console: list[str] = field(default_factory=list)


XHR_ERROR_EVENT = "XMLHttpRequest error event (status 0)"  # cors_browser_cases.js_for's text


def mentions(case_id: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"/c/{case_id}") + r"(?![\w-])")


def register_case(api: ApiServer, case: Case) -> str:
    """Give the API server the case's replies; the URL the page calls for it."""
    if case.preflight:
        api.replies[(case.id, "OPTIONS")] = case.preflight
    if case.actual:
        api.replies[(case.id, "ACTUAL")] = case.actual
    for sub, reply in case.hops.items():
        api.replies[(case.id, f"ACTUAL:{sub}")] = reply
    host = f"localhost:{closed_port() if case.closed_port else api.port}"
    return f"{case.scheme}://{host}/c/{case.id}"


def predict(
    req: CorsRequest,
    case: Case,
    options: list[Any],
    actuals: list[Any],
    cache: PreflightCache,
    mode: str,
    *,
    skipped: bool,
) -> CorsVerdict:
    """albprobe's verdict on what the API server answered the engine (redirects followed), and
    the preflight cache updated as the engine's would be."""
    pre_resp = (  # no registered preflight reply: the API server answered 404
        HttpResponse(
            case.preflight.status if case.preflight else 404, tuple(options[0].reply_headers)
        )
        if options
        else None
    )
    replies = [case.actual] + list(case.hops.values())
    act_resps = [
        HttpResponse(r.status, tuple(s.reply_headers), r.body)
        for r, s in zip(replies, actuals, strict=False)
        if r is not None
    ]
    error = "ConnectionRefusedError" if case.closed_port else None
    verdict = evaluate(
        req,
        pre_resp,
        act_resps[0] if act_resps else None,
        mode,
        preflight_skipped=skipped,
        preflight_error=error,
        actual_error=error,
    )
    hop_req, i = req, 0
    while verdict.ok and i + 1 < len(act_resps) and act_resps[i].is_redirect:
        nxt = redirected_request(hop_req, act_resps[i])
        assert nxt is not None
        hop_req = nxt
        i += 1
        verdict = evaluate_actual(hop_req, act_resps[i], mode)
    if verdict.ok and pre_resp is not None and not skipped:
        cache.store(req, pre_resp, time.monotonic())
    return verdict


def run_engine_cases(
    engine: Engine, cases: list[Case], mode: str, api: ApiServer, page: PageServer
) -> dict[str, EngineOutcome]:
    origin = f"http://127.0.0.1:{page.port}"
    engine.open_page(origin + "/")
    cache = PreflightCache(mode=mode)
    outcomes: dict[str, EngineOutcome] = {}
    for case in cases:
        url = register_case(api, case)
        out = EngineOutcome()
        engine.mark(case.id)
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
            out.predicted_preflight.append(needs_preflight(req, mode) and not skipped)
            n_seen = len(api.seen.get(case.id, []))
            out.js.append(engine.evaluate(js_for(url, call)))
            seen = api.seen.get(case.id, [])[n_seen:]
            options = [s for s in seen if s.method == "OPTIONS"]
            actuals = [s for s in seen if s.method != "OPTIONS"]
            out.seen_options.append(len(options))
            # What the engine sent vs what albprobe sends: the preflight and the first request
            # (redirect hops and the cache modes' Pragma/Cache-Control are not modelled).
            if call.mode == "cors" and call.cache == "default":
                if options:
                    ours = preflight_headers(req, mode)
                    out.request_headers += wire_differences(mode, ours, options[0].headers)
                if actuals:
                    ours = actual_headers(req, mode)
                    out.request_headers += wire_differences(mode, ours, actuals[0].headers)
            out.expected.append(predict(req, case, options, actuals, cache, mode, skipped=skipped))
        outcomes[case.id] = out
    engine.mark("end")
    lines = _settled_console(engine)
    by_case = split_by_marks(lines)
    for case in cases:
        outcomes[case.id].console = by_case.get(case.id, [])
        outcomes[case.id].all_console = lines
    return outcomes


_CASE_PATH = re.compile(r"/c/([\w-]+)")


def split_by_marks(lines: list[str], mark: str = "albprobe-mark ") -> dict[str, list[str]]:
    """Console lines grouped by case: a line naming a case's URL belongs to that case (Firefox's
    second line can land after the next mark); a line naming none (WebKit's reason line) to
    the case whose mark came last."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines:
        if line.startswith(mark):
            current = line[len(mark) :]
            out.setdefault(current, [])
            continue
        named = _CASE_PATH.search(line)
        owner = named.group(1) if named else current
        if owner is not None:
            out.setdefault(owner, []).append(line)
    return out


def _settled_console(engine: Engine) -> list[str]:
    """The console once the end mark is in and no new line has arrived for a moment."""
    lines = engine.console()
    deadline = time.monotonic() + 20
    while "albprobe-mark end" not in lines and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = engine.console()
    deadline = time.monotonic() + 10
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.5:
        time.sleep(0.05)
        now = engine.console()
        if len(now) != len(lines):
            lines, quiet_since = now, time.monotonic()
    return lines


def check_case(case: Case, out: EngineOutcome) -> None:
    """The evaluator's verdict, preflight prediction, script error and console lines equal what
    the real engine did, call by call; its preflight and first request carry the headers
    albprobe sends for that engine, in its order (User-Agent included)."""
    assert out.request_headers == [], out.request_headers
    for i, (js, verdict) in enumerate(zip(out.js, out.expected, strict=True)):
        assert verdict.ok == js.startswith("status "), (i, js, verdict)
        if not case.closed_port:  # nobody listens there to count preflights
            assert out.predicted_preflight[i] == (out.seen_options[i] > 0), (i, out.seen_options)
        if verdict.ok:
            status = (
                0
                if case.calls[i].mode == "no-cors"
                else (case.hops.get("hop") or case.actual).status  # type: ignore[union-attr]
            )
            assert js == f"status {status}"
        else:
            assert js == verdict.js_error
    assert out.console == [line for v in out.expected for line in v.console]


def normalise(line: str, api_port: int, page_port: int) -> str:
    """A console line with this run's ports replaced, for comparing with docs/cors.md."""
    return line.replace(f":{api_port}", ":<api>").replace(f":{page_port}", ":<page>")


# The only sets of failed checks a console line may leave open: the text names no value that
# tells them apart (WebKit prints no Allow-Origin value; a 3xx preflight is a redirect or, with
# no Location, a plain non-ok status). Lines shared by many failures (Firefox's "CORS request
# did not succeed", WebKit's "cannot load ... due to access control checks") name no check.
TEXT_CANNOT_TELL = (
    frozenset({"allow-origin-missing", "allow-origin-invalid", "allow-origin-mismatch"}),
    frozenset({"preflight-redirect", "preflight-status"}),
)
NAMES_NO_CHECK = 4  # explain's "a follow-up line" answer: more readings than this


def too_wide(line: str) -> str | None:
    """Why `albprobe explain`'s reading of ``line`` is wider than its text allows, or None."""
    from albprobe.commands.explain import explain_line

    e = explain_line(line)
    steps = frozenset(e.steps)
    if len(steps) <= 1 or len(steps) >= NAMES_NO_CHECK:
        return None
    if steps not in TEXT_CANNOT_TELL:
        return f"{sorted(steps)} for {line!r}"
    if "preflight-redirect" in steps and e.status is not None and not 300 <= e.status <= 399:
        return f"redirect check on status {e.status}: {line!r}"
    return None


def check_recognised(engine: str, outcomes: dict[str, EngineOutcome]) -> int:
    """Every console line and script error the real engine produced is recognised by
    `albprobe explain`'s recognizer as this engine's, with the failed check among its readings
    and no reading its text rules out (:func:`too_wide`). Returns how many lines were checked."""
    from probes.cors.recognize import recognize

    n = 0
    for case_id, out in outcomes.items():
        for js, verdict in zip(out.js, out.expected, strict=True):
            for line in verdict.console:
                matches = recognize(line)
                assert {m.engine for m in matches} == {engine}, (case_id, line, matches)
                if verdict.step is not None:
                    assert any(verdict.step in m.steps for m in matches), (case_id, line)
                assert too_wide(line) is None, (case_id, too_wide(line))
                n += 1
            if verdict.ok or js == XHR_ERROR_EVENT:
                continue
            for line in [js]:  # a script error can be shared (Firefox and WebKit XHR)
                matches = recognize(line)
                assert engine in {m.engine for m in matches}, (case_id, line, matches)
                if verdict.step is not None:
                    assert any(verdict.step in m.steps for m in matches), (case_id, line)
                n += 1
        expected = [line for v in out.expected for line in v.console]
        assert out.console == expected, (case_id, out.console, expected)  # all observed lines
    everything = [  # the page's whole console, whichever case a line belongs to
        line
        for line in next(iter(outcomes.values())).all_console
        if not line.startswith("albprobe-mark ")
    ]
    unknown = [line for line in everything if {m.engine for m in recognize(line)} != {engine}]
    assert everything and unknown == []
    return n


DOCS_CORS = Path(__file__).resolve().parents[2] / "docs" / "cors.md"
_DOC_ENGINES = {"chrome": 1, "firefox": 2, "webkit": 3}


def docs_table(engine: str) -> dict[str, list[str]]:
    """docs/cors.md's engine-lines table: case id -> the lines in ``engine``'s column."""
    text = DOCS_CORS.read_text(encoding="utf-8")
    block = text.split("<!-- engine-lines:begin -->", 1)[1].split("<!-- engine-lines:end -->")[0]
    out = {}
    for row in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        cell = cells[_DOC_ENGINES[engine]]
        lines = [] if cell == "(none)" else [c.strip("`") for c in cell.split("<br>")]
        out[cells[0].strip("`")] = lines
    return out


def check_docs_table(engine: str, console: dict[str, list[str]], ports: tuple[int, int]) -> int:
    """Every row of the docs table equals what the real engine printed for that case."""
    table = docs_table(engine)
    assert len(table) >= 10
    for case_id, lines in table.items():
        assert [normalise(x, *ports) for x in console[case_id]] == lines, case_id
    return len(table)
