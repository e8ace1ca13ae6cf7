"""`albprobe cors --scan`: classification (pure) and scans of real local servers whose CORS
policies carry the classic mistakes."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from albprobe.cli import main
from probes.cors_scan import (
    CHECKS,
    SEVERITIES,
    ScanProbe,
    ScanResponse,
    classify,
    scan,
    scan_probes,
)

ALLOWED = "https://hakwonplus.com"


@contextmanager
def policy_server(
    allow: Callable[[str], bool], *, credentials: bool = True, vary: bool = True, star: bool = False
) -> Iterator[str]:
    """An API that decides Access-Control-Allow-Origin with ``allow(origin)``."""

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            origin = self.headers.get("Origin", "")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if star:
                self.send_header("Access-Control-Allow-Origin", "*")
            elif allow(origin):
                self.send_header("Access-Control-Allow-Origin", origin)
            if credentials:
                self.send_header("Access-Control-Allow-Credentials", "true")
            if vary:
                self.send_header("Vary", "Origin")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/api/me"
    finally:
        srv.shutdown()
        srv.server_close()


def checks_of(report) -> dict[str, str]:
    return {f.check: f.severity for f in report.findings}


def test_probe_origins_cover_every_class() -> None:
    probes = scan_probes(ALLOWED, token="t0k")
    origins = {p.check: p.origin for p in probes}
    assert origins["null-origin"] == "null"
    assert origins["prefix-match"] == "https://hakwonplus.com.albprobe-t0k.example"
    assert origins["suffix-match"] == "https://albprobehakwonplus.com"
    assert origins["substring-match"] == "https://akwonplus.com"
    assert origins["unescaped-dot"] == "https://hakwonplusacom"
    assert origins["http-origin-trusted"] == "http://hakwonplus.com"
    assert origins["any-subdomain"] == "https://albprobe-t0k.hakwonplus.com"
    assert sum(p.check == "special-characters" for p in probes) >= 5
    assert sum(p.check == "third-party-origin" for p in probes) >= 3
    probe_classes = {p.check for p in probes} - {"baseline"}
    passive = {
        "wildcard-origin",
        "wildcard-with-credentials",
        "missing-vary-origin",
        "allowed-origin-rejected",
    }
    assert probe_classes | passive == set(CHECKS)


def test_reflection_with_credentials_is_critical_and_implies_the_rest() -> None:
    with policy_server(lambda o: True) as url:
        report = scan(url, ALLOWED)
    assert checks_of(report) == {"reflect-any-origin": "critical", "null-origin": "critical"}
    assert report.worst == "critical"


def test_severity_rises_with_credentials() -> None:
    with policy_server(lambda o: True, credentials=False) as url:
        report = scan(url, ALLOWED)
    assert checks_of(report) == {"reflect-any-origin": "high", "null-origin": "high"}


def test_unanchored_regex_mistakes() -> None:
    pattern = re.compile(r"https://hakwonplus.com")  # re.match, no $, unescaped dot
    with policy_server(lambda o: bool(pattern.match(o))) as url:
        report = scan(url, ALLOWED)
    assert checks_of(report) == {
        "prefix-match": "critical",
        "unescaped-dot": "critical",
        "special-characters": "critical",
    }


def test_suffix_substring_subdomain_and_http_mistakes() -> None:
    def allow(origin: str) -> bool:
        host = origin.split("://", 1)[-1]
        return host.endswith("hakwonplus.com") or host in "hakwonplus.com"

    with policy_server(allow, credentials=False) as url:
        report = scan(url, ALLOWED)
    assert checks_of(report) == {
        "suffix-match": "high",
        "substring-match": "high",
        "http-origin-trusted": "medium",
        "any-subdomain": "low",
    }


def test_third_party_and_missing_vary() -> None:
    trusted = {ALLOWED, "https://codepen.io"}
    with policy_server(lambda o: o in trusted, vary=False) as url:
        report = scan(url, ALLOWED)
    assert checks_of(report) == {"third-party-origin": "high", "missing-vary-origin": "medium"}


def test_wildcard_with_credentials_is_reported_as_invalid() -> None:
    with policy_server(lambda o: False, star=True) as url:
        report = scan(url, ALLOWED)
    assert checks_of(report) == {"wildcard-with-credentials": "low"}
    with policy_server(lambda o: False, star=True, credentials=False) as url:
        assert checks_of(scan(url, ALLOWED)) == {"wildcard-origin": "low"}


def test_correct_policy_has_no_findings_and_cli_exit_codes(capsys) -> None:
    with policy_server(lambda o: o == ALLOWED) as url:
        assert main(["cors", url, "--scan", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc[0]["findings"] == [] and doc[0]["worst"] is None
    with policy_server(lambda o: True) as url:
        assert main(["cors", url, "--scan"]) == 1
        out = capsys.readouterr().out
        assert "reflect-any-origin" in out and "critical" in out


def test_classify_is_pure_and_ignores_failed_probes() -> None:
    p = ScanProbe("null-origin", "null")
    responses = [
        ScanResponse(ScanProbe("baseline", ALLOWED), 200, ALLOWED, "true", "origin", "app", "x"),
        ScanResponse(p, None, None, None, None, "network", "ConnectionRefusedError", "x"),
    ]
    assert classify("u", ALLOWED, responses) == []
    responses[1] = ScanResponse(p, 200, "null", None, None, "app", "x")
    [f] = classify("u", ALLOWED, responses)
    assert (f.check, f.severity) == ("null-origin", "high")
    assert SEVERITIES.index(f.severity) > SEVERITIES.index("medium")


@pytest.mark.parametrize("origin", ["https://hakwonplus.com", "http://localhost:3000"])
def test_scan_probes_are_valid_for_other_origins(origin) -> None:
    probes = scan_probes(origin)
    assert probes[0].origin == origin
    assert len({p.origin for p in probes}) == len(probes)
