"""`albprobe cors` against the real testbed and its fault switches: a proxy 502 is attributed to
the proxy with the browser's "No 'Access-Control-Allow-Origin' header" message; the
cors-misconfig control is attributed to the app; healthy passes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from albprobe.cli import main
from probes.cors_probe import Endpoint, ProbeOptions, probe
from probes.cors_scan import scan

ORIGIN = "https://hakwonplus.com"
MISSING = "No 'Access-Control-Allow-Origin' header is present on the requested resource."
PREFIX = "Response to preflight request doesn't pass access control check: "
JSON_WRITE = (("Content-Type", "application/json"), ("X-Client", "albprobe"))


@contextlib.contextmanager
def fault(tb, name: str, wait: str | None = None) -> Iterator[None]:
    """Switch a testbed fault on for the block; always switch it off again."""
    tb.set_fault(name, True)
    try:
        if wait:
            tb.wait_for_health(wait)
        yield
    finally:
        tb.set_fault(name, False)
        if wait:
            tb.wait_for_health("UP")


def endpoints(base: str) -> list[Endpoint]:
    return [
        Endpoint("fast", f"{base}/api/fast"),
        Endpoint("slow", f"{base}/api/slow?ms=50"),
        Endpoint("create", f"{base}/api/items", "POST", JSON_WRITE, '{"title": "t"}'),
        Endpoint("update", f"{base}/api/items", "PUT", JSON_WRITE, '{"title": "u"}'),
        Endpoint("patch", f"{base}/api/items", "PATCH", JSON_WRITE, '{"title": "p"}'),
        Endpoint("delete", f"{base}/api/items", "DELETE", (("X-Client", "albprobe"),)),
    ]


OPTS = ProbeOptions(origin=ORIGIN, timeout=10)


def by_name(results):
    return {r.endpoint: r for r in results}


def test_healthy_testbed_passes(cors_testbed) -> None:
    results = by_name(probe(endpoints(cors_testbed.url), OPTS))
    for r in results.values():
        assert r.ok, (r.endpoint, r.verdict)
        assert r.actual.source == "app", r.actual
    assert results["fast"].preflight is None  # a simple GET: no preflight
    for name in ("create", "update", "patch", "delete"):
        p = results[name].preflight
        assert (p.status, p.source) == (200, "app")
    assert results["create"].actual.status == 201
    assert results["delete"].actual.status == 204


def test_target_down_proxy_502_is_the_proxy_not_cors(cors_testbed) -> None:
    with fault(cors_testbed, "target-down", wait="DOWN"):
        results = by_name(probe(endpoints(cors_testbed.url), OPTS))
    get = results["fast"]
    assert not get.ok and get.verdict.step == "allow-origin-missing"
    assert (get.actual.status, get.actual.source, get.actual.evidence) == (
        502,
        "proxy",
        "server: awselb/2.0",
    )
    assert get.verdict.message == (
        f"Access to fetch at '{cors_testbed.url}/api/fast' from origin '{ORIGIN}' has been"
        f" blocked by CORS policy: {MISSING}"
    )
    post = results["create"]
    assert (post.verdict.phase, post.failing_source, post.preflight.status) == (
        "preflight",
        "proxy",
        502,
    )
    assert post.actual is None  # the browser never sends it
    assert post.verdict.message.endswith(PREFIX + MISSING)
    assert all(r.failing_source == "proxy" for r in results.values())


def test_cors_misconfig_is_the_app(cors_testbed) -> None:
    with fault(cors_testbed, "cors-misconfig"):
        results = by_name(probe(endpoints(cors_testbed.url), OPTS))
    get = results["fast"]
    assert not get.ok and get.verdict.step == "allow-origin-missing"
    assert (get.actual.status, get.actual.source) == (200, "app")
    post = results["create"]
    assert (post.preflight.status, post.failing_source, post.verdict.phase) == (
        200,
        "app",
        "preflight",
    )
    assert all(r.failing_source == "app" for r in results.values())


def test_worker_timeout_is_gunicorn_not_the_app(cors_testbed) -> None:
    with fault(cors_testbed, "hang"):
        [r] = probe([Endpoint("fast", f"{cors_testbed.url}/api/fast")], OPTS)
    assert not r.ok and r.verdict.step == "allow-origin-missing"
    assert (r.actual.status, r.actual.source, r.actual.evidence) == (
        500,
        "server",
        "body: gunicorn error page",
    )


def test_blocked_port_is_the_proxy(cors_testbed) -> None:
    with fault(cors_testbed, "blocked-port"):
        [r] = probe([Endpoint("fast", f"{cors_testbed.url}/api/fast")], OPTS)
    assert not r.ok and r.failing_source == "proxy"
    assert r.actual.status in (502, 504)


def test_cli_exit_codes_and_json_against_testbed(cors_testbed, capsys) -> None:
    assert main(["cors", "--target", cors_testbed.url, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and len(doc["results"]) == 3  # the default config endpoints
    assert {r["actual"]["source"] for r in doc["results"]} == {"app"}
    with fault(cors_testbed, "cors-misconfig"):
        assert main(["cors", "--target", cors_testbed.url, "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert {r["failing_source"] for r in doc["results"]} == {"app"}
        assert main(["cors", f"{cors_testbed.url}/api/fast"]) == 1
        text = capsys.readouterr().out
        assert "FAIL allow-origin-missing" in text and "check the CORS setup" in text
    with fault(cors_testbed, "target-down", wait="DOWN"):
        assert main(["cors", f"{cors_testbed.url}/api/fast"]) == 1
        text = capsys.readouterr().out
        assert "502 proxy (server: awselb/2.0)" in text and "is a symptom" in text


def test_scan_of_the_testbed_is_clean(cors_testbed) -> None:
    report = scan(f"{cors_testbed.url}/api/fast", ORIGIN)
    assert report.findings == ()
    assert report.inconclusive == ()
    assert len(report.responses) >= 15
    base = next(r for r in report.responses if r.probe.check == "baseline")
    assert (base.acao, base.acac) == (ORIGIN, "true") and "origin" in base.vary.lower()


def test_origin_check_with_live_preflight(cors_testbed, capsys) -> None:
    url = f"{cors_testbed.url}/api/items"
    settings = "testbed/app/settings.py"
    assert main(["origin-check", ORIGIN, "--settings", settings, "--url", url, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    status = {c["name"]: c["status"] for c in doc["checks"]}
    # The allowed origin passes CORS, CSRF and the live preflight; ALLOWED_HOSTS does not list
    # the front-end host (the testbed is an API-only Django), which the report says.
    assert status["CORS_ALLOWED_ORIGINS"] == "pass"
    assert status["CSRF_TRUSTED_ORIGINS"] == "pass"
    assert status["ALLOWED_HOSTS (API host)"] == "pass"
    assert status["live preflight"] == "pass"
    assert status["MIDDLEWARE"] == "pass"
    assert status["ALLOWED_HOSTS (front host)"] == "fail"
    new = "https://new.hakwonplus.com"
    assert main(["origin-check", new, "--settings", settings, "--url", url, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["CORS_ALLOWED_ORIGINS"]["status"] == "fail"
    assert checks["CSRF_TRUSTED_ORIGINS"]["status"] == "fail"
    live = checks["live preflight"]
    assert live["status"] == "fail" and "from app" in live["detail"] and MISSING in live["detail"]


def test_cors_over_https_verifies_against_the_testbed_ca(cors_testbed, capsys, tmp_path) -> None:
    """Port 443's role: `albprobe cors --ca-bundle` (and [browser] ca_bundle) verify the testbed's
    certificate; without the CA the system's store refuses it (verification is never off)."""
    tb, ca = cors_testbed, str(cors_testbed.ca_file)
    assert main(["cors", "--target", tb.https_url, "--ca-bundle", ca, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and {r["actual"]["source"] for r in doc["results"]} == {"app"}
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text(f'[browser]\nca_bundle = "{ca}"\n')
    assert main(["cors", "--target", tb.https_url, "--config", str(cfg), "--json"]) == 0
    capsys.readouterr()
    assert main(["cors", f"{tb.https_url}/api/fast", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["actual"]["source"] == "network"
    assert scan(f"{tb.https_url}/api/fast", ORIGIN, ca_bundle=ca).findings == ()
    assert main(["cors", "--target", tb.https_url, "--ca-bundle", str(tmp_path / "no.pem")]) == 2


def test_http_listener_redirect_fails_the_preflight(cors_testbed) -> None:
    """Port 80's role: the ALB's 301 to HTTPS answers the preflight, which Chromium refuses;
    a simple GET fails on the redirect itself (a proxy response without CORS headers)."""
    results = by_name(probe(endpoints(cors_testbed.redirect_url), OPTS))
    create = results["create"]
    assert not create.ok and create.preflight.status == 301
    assert create.verdict.message.endswith(
        PREFIX + "Redirect is not allowed for a preflight request."
    )
    fast = results["fast"]
    assert not fast.ok and fast.actual.status == 301 and fast.actual.source == "proxy"
    assert fast.verdict.message.endswith(MISSING)
