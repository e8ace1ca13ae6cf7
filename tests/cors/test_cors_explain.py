"""`albprobe explain` on its own (the round-trip over every line the real engines printed is in
test_cors_browser.py, test_cors_firefox.py and test_cors_webkit.py)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from albprobe.cli import app

SAFARI_502 = "[Error] Preflight response is not successful. Status code: 502"
FIREFOX_502 = (
    "Cross-Origin Request Blocked: The Same Origin Policy disallows reading the remote resource"
    " at https://api.hakwonplus.com/api/me. (Reason: CORS header ‘Access-Control-Allow-Origin’"
    " missing). Status code: 502."
)
CHROME_MISSING = (
    "Access to fetch at 'https://api.hakwonplus.com/api/me' from origin 'https://hakwonplus.com'"
    " has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header is present on the"
    " requested resource."
)


def _run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["explain", *args], input=stdin)


def test_safari_preflight_502_reads_as_proxy() -> None:
    r = _run(SAFARI_502, "--json")
    assert r.exit_code == 0, r.output
    (doc,) = json.loads(r.output)
    assert doc["engine"] == "webkit" and doc["status"] == 502
    assert "preflight-status" in doc["failed_checks"]
    assert any("ALB/proxy error page" in t for t in doc["explanation"])


def test_firefox_line_gives_url_and_next_commands() -> None:
    r = _run(FIREFOX_502)
    assert r.exit_code == 0, r.output
    assert "engine: Firefox" in r.output and "allow-origin-missing" in r.output
    assert "albprobe cors https://api.hakwonplus.com/api/me" in r.output
    assert "--browser firefox" in r.output
    assert "albprobe check" in r.output and "albprobe analyze --alb-logs" in r.output


def test_chromium_line_says_what_it_cannot_tell() -> None:
    r = _run(CHROME_MISSING)
    assert r.exit_code == 0, r.output
    assert "the status code" in r.output
    assert "--origin https://hakwonplus.com --browser chrome" in r.output


def test_korean_output() -> None:
    r = _run(SAFARI_502, "--lang", "ko")
    assert r.exit_code == 0, r.output
    assert "브라우저 엔진: WebKit (Safari)" in r.output and "상태 코드: 502" in r.output


def test_unknown_text_is_not_guessed() -> None:
    r = _run("Uncaught ReferenceError: foo is not defined")
    assert r.exit_code == 1
    assert r.output.strip() == "not a CORS message I know"


def test_file_of_lines(tmp_path) -> None:
    f = tmp_path / "console.txt"
    f.write_text(f"{SAFARI_502}\n\n{FIREFOX_502}\nTypeError: Load failed\n", encoding="utf-8")
    r = _run("-f", str(f), "--json")
    assert r.exit_code == 0, r.output
    docs = json.loads(r.output)
    assert [d["engine"] for d in docs] == ["webkit", "firefox", "webkit"]
    assert docs[2]["kind"] == "script-error"


def test_bad_input_is_one_line_error(tmp_path) -> None:
    r = _run("-f", str(tmp_path / "missing.txt"))
    assert r.exit_code != 0 and "Traceback" not in r.output
    r = _run(SAFARI_502, "--lang", "fr")
    assert r.exit_code != 0 and "--lang" in r.output


def test_webkit_reason_line_borrows_the_url_of_its_next_line() -> None:
    from albprobe.commands.explain import explain_lines

    reason, load = explain_lines(
        [
            "Origin https://hakwonplus.com is not allowed by Access-Control-Allow-Origin."
            " Status code: 503",
            "Fetch API cannot load https://api.hakwonplus.com/api/me due to access control checks.",
        ]
    )
    assert reason.engine == load.engine == "webkit" and reason.status == 503
    assert set(reason.steps) >= {"allow-origin-missing", "allow-origin-mismatch"}
    text = "\n".join(reason.text)
    assert "ALB 503" in text
    assert "albprobe cors https://api.hakwonplus.com/api/me --origin https://hakwonplus.com" in text


def test_shared_script_error_names_both_engines() -> None:
    from albprobe.commands.explain import explain_line

    e = explain_line("SecurityError: The operation is insecure.")
    assert e.known and "Firefox / WebKit (Safari)" in e.text[0]


def test_time_fills_the_alb_log_window_and_preflight_replay_asks_for_the_call() -> None:
    preflight_line = CHROME_MISSING.replace(
        "CORS policy: ",
        "CORS policy: Response to preflight request doesn't pass access control check: ",
    )
    r = _run(preflight_line, "--at", "2026-11-30T10:42:31")
    assert r.exit_code == 0, r.output
    assert "--since 2026-11-30T10:41:00Z --until 2026-11-30T10:44:00Z" in r.output
    assert '-X "${METHOD:?}"' in r.output and "it was the preflight" in r.output
    assert _run(SAFARI_502, "--at", "yesterday").exit_code == 2


def test_safari_resource_prefix_is_the_same_reason() -> None:
    from albprobe.commands.explain import explain_line

    e = explain_line(
        "[Error] Failed to load resource: Request header field X-Client is not allowed by"
        " Access-Control-Allow-Headers."
    )
    assert (e.engine, e.steps) == ("webkit", ("allow-headers",))
    assert not explain_line("Failed to load resource: net::ERR_FAILED").known


def test_xhr_line_replays_as_xhr() -> None:
    r = _run(CHROME_MISSING.replace("Access to fetch", "Access to XMLHttpRequest"))
    assert r.exit_code == 0 and "--browser chrome --xhr" in r.output
    assert "--xhr" not in _run(CHROME_MISSING).output


def _docs_line(engine: str, case: str, i: int = 0) -> str:
    """Line ``i`` of docs/cors.md's engine-lines table (checked against the real engines by
    test_docs_table_matches_*)."""
    from cors_engine_run import docs_table

    return docs_table(engine)[case][i]


def test_no_reading_of_a_real_line_is_wider_than_its_text() -> None:
    """Every line the real engines printed in the docs table names one check, a set its text
    cannot split (cors_engine_run.TEXT_CANNOT_TELL), or none (a follow-up line)."""
    from cors_engine_run import docs_table, too_wide

    lines = [x for e in ("chrome", "firefox", "webkit") for c in docs_table(e).values() for x in c]
    assert len(lines) > 40
    assert [too_wide(x) for x in lines if too_wide(x)] == []


def test_firefox_does_not_match_reads_the_quoted_value() -> None:
    from albprobe.commands.explain import explain_line

    listed = explain_line(_docs_line("firefox", "acao-list"))
    assert "does not match ‘https://a.example, http://127.0.0.1:<page>’" in listed.line
    assert listed.steps == ("allow-origin-multiple",)
    assert explain_line(_docs_line("firefox", "acao-invalid")).steps == ("allow-origin-invalid",)
    other = _docs_line("firefox", "acao-invalid").replace("‘foo’", "‘https://hakwonplus.com’")
    assert explain_line(other).steps == ("allow-origin-mismatch",)
    assert explain_line(other.replace("‘https://hakwonplus.com’", "‘null’")).steps == (
        "allow-origin-mismatch",
    )


def test_preflight_status_that_is_not_a_redirect_is_not_the_redirect_check() -> None:
    from albprobe.commands.explain import explain_line

    for engine, case in (
        ("webkit", "preflight-alb-502"),
        ("webkit", "preflight-404-no-cors"),
        ("firefox", "preflight-500-with-cors"),
    ):
        e = explain_line(_docs_line(engine, case))
        assert e.steps == ("preflight-status",), (engine, case, e.steps)
        assert e.kind == "reason"
    # A 302 may be the redirect or (no Location) a plain non-ok status: both stay.
    assert set(explain_line(_docs_line("webkit", "preflight-redirect")).steps) == {
        "preflight-redirect",
        "preflight-status",
    }
    assert set(explain_line(_docs_line("firefox", "preflight-redirect", 1)).steps) == {
        "preflight-redirect",
        "preflight-status",
    }


def test_lines_that_name_no_check_still_say_so() -> None:
    from albprobe.commands.explain import explain_line

    did_not = explain_line(_docs_line("firefox", "preflight-alb-502", 1))
    assert "CORS request did not succeed" in did_not.line and len(did_not.steps) > 3
    assert "a follow-up line: the reason is the console line before it" in did_not.text
    cannot = explain_line(_docs_line("webkit", "preflight-alb-502", 1))
    assert "due to access control checks" in cannot.line and len(cannot.steps) > 3
    origin = explain_line(_docs_line("webkit", "acao-invalid"))
    assert set(origin.steps) == {
        "allow-origin-missing",
        "allow-origin-invalid",
        "allow-origin-mismatch",
    }
