"""`albprobe cors` input handling and output, against small local servers (no testbed)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from albprobe.cli import main

ORIGIN = "https://hakwonplus.com"


class _Seen(list):
    """(method, path, lower-cased headers) per request; ``raw``: the headers as sent, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[list[tuple[str, str]]] = []


@pytest.fixture
def api():
    """A Django-cors-like API: allows ORIGIN with credentials, answers preflights; records requests."""
    seen = _Seen()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            seen.raw.append(list(self.headers.items()))
            origin = self.headers.get("Origin")
            self.send_response(200 if self.command == "OPTIONS" else 201)
            if origin == ORIGIN:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                if self.command == "OPTIONS":
                    self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
                    self.send_header("Access-Control-Allow-Headers", "content-type, authorization")
            self.send_header("Vary", "origin")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _reply

        def __getattr__(self, name: str):  # do_patch, do_PATCH, ...
            if name.startswith("do_"):
                return self._reply
            raise AttributeError(name)

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_preflight_then_actual_like_chromium(api, capsys, monkeypatch) -> None:
    base, seen = api
    monkeypatch.setenv("ALBPROBE_COOKIE", "sessionid=abc")
    rc = main(
        [
            "cors",
            f"{base}/api/items",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data",
            "{}",
            "--json",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    [r] = doc["results"]
    assert r["ok"] and r["preflight"]["status"] == 200 and r["actual"]["status"] == 201
    (m1, _, pre), (m2, _, act) = seen
    assert (m1, m2) == ("OPTIONS", "PUT")
    assert pre["access-control-request-method"] == "PUT"
    assert pre["access-control-request-headers"] == "content-type"
    assert pre["origin"] == ORIGIN and "cookie" not in pre  # never cookies on the preflight
    assert act["cookie"] == "sessionid=abc" and act["origin"] == ORIGIN


def test_lower_case_patch_stays_lower_case_like_fetch(api, capsys) -> None:
    """fetch upper-cases only DELETE/GET/HEAD/OPTIONS/POST/PUT; `patch` goes out as `patch`
    (and Django-cors-headers' allow list then decides, case-sensitively, like the browser)."""
    base, seen = api
    main(["cors", f"{base}/api/items", "-X", "patch", "--json"])
    doc = json.loads(capsys.readouterr().out)
    [r] = doc["results"]
    assert r["method"] == "patch"
    (m1, _, pre), *_ = seen
    assert m1 == "OPTIONS" and pre["access-control-request-method"] == "patch"


def test_string_body_without_content_type_is_text_plain(api, capsys) -> None:
    """fetch adds `text/plain;charset=UTF-8` to a string body: safelisted, so no preflight."""
    base, seen = api
    assert main(["cors", f"{base}/api/items", "-X", "post", "--data", "hi", "--json"]) == 0
    [(method, _, act)] = seen
    assert method == "POST" and act["content-type"] == "text/plain;charset=UTF-8"


def test_authorization_from_env_triggers_preflight_and_is_not_printed(
    api, capsys, monkeypatch
) -> None:
    base, seen = api
    monkeypatch.setenv("ALBPROBE_AUTHORIZATION", "Bearer s3cret")
    assert main(["cors", f"{base}/api/me", "--json"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert (
        seen[0][0] == "OPTIONS" and seen[0][2]["access-control-request-headers"] == "authorization"
    )
    assert seen[1][2]["authorization"] == "Bearer s3cret"


def test_disallowed_origin_fails_with_exit_1(api, capsys) -> None:
    base, _ = api
    assert main(["cors", f"{base}/api/me", "--origin", "https://evil.example", "--json"]) == 1
    [r] = json.loads(capsys.readouterr().out)["results"]
    assert r["verdict"]["step"] == "allow-origin-missing" and r["failing_source"] == "app"


def test_config_endpoints_on_target(api, tmp_path, capsys) -> None:
    base, seen = api
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text(
        'target = "https://example.invalid"\n'
        '[[endpoints]]\nname = "me"\npath = "/api/me"\n'
        '[[endpoints]]\nname = "rm"\npath = "/api/items/1"\nmethod = "DELETE"\n'
        '[browser]\ncors_mode = "spec"\ncredentials = false\n'
    )
    assert main(["cors", "-c", str(cfg), "--target", base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["mode"], doc["credentials"]) == ("spec", "omit")
    assert [r["endpoint"] for r in doc["results"]] == ["me", "rm"]
    assert {(m, p) for m, p, _ in seen} == {
        ("GET", "/api/me"),
        ("OPTIONS", "/api/items/1"),
        ("DELETE", "/api/items/1"),
    }


def test_unreachable_host_is_a_network_row_not_a_crash(capsys) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert main(["cors", f"http://127.0.0.1:{port}/api/me", "--json"]) == 1
    [r] = json.loads(capsys.readouterr().out)["results"]
    assert r["verdict"]["step"] == "network"
    assert r["verdict"]["message"] == "TypeError: Failed to fetch"
    assert r["verdict"]["net_error"] == "net::ERR_CONNECTION_REFUSED"
    assert (
        r["actual"]["source"] == "network" and r["actual"]["evidence"] == "ConnectionRefusedError"
    )
    assert main(["cors", f"http://127.0.0.1:{port}/api/me"]) == 1
    assert "net::ERR_CONNECTION_REFUSED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["cors", "ftp://x/y"], "is not an http(s) URL"),
        (["cors", "http://127.0.0.1:9/x", "-H", "NoColon"], "expected 'Name: value'"),
        (["cors", "http://127.0.0.1:9/x", "--credentials", "yes"], "--credentials"),
        (["cors", "http://127.0.0.1:9/x", "--browser", "lynx"], "--browser"),
        (["cors", "http://127.0.0.1:9/x", "--origin", "hakwonplus.com"], "is not an origin"),
        (["cors", "http://127.0.0.1:9/x", "-c", "/nonexistent/albprobe.toml"], "not found"),
        (["cors"], "no URL to probe"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, needle, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "browser,reason",
    [
        ("chrome", "has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header"),
        (
            "firefox",
            "(Reason: CORS header ‘Access-Control-Allow-Origin’ missing). Status code: 201.",
        ),
        ("webkit", "is not allowed by Access-Control-Allow-Origin. Status code: 201"),
    ],
)
def test_browser_option_words_the_failure_as_that_engine(api, browser, reason, capsys) -> None:
    base, _ = api
    rc = main(
        ["cors", f"{base}/x", "--origin", "https://evil.example", "--browser", browser, "--json"]
    )
    assert rc == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == browser
    (res,) = doc["results"]
    assert res["verdict"]["step"] == "allow-origin-missing"
    assert reason in res["verdict"]["message"]
    if browser == "webkit":  # the reason line names no URL; the second line does
        assert res["verdict"]["console"][1] == (
            f"Fetch API cannot load {base}/x due to access control checks."
        )


def test_browser_from_config(api, tmp_path, capsys) -> None:
    base, _ = api
    cfg = tmp_path / "albprobe.toml"
    cfg.write_text('[browser]\norigin = "https://evil.example"\ncors_mode = "webkit"\n')
    assert main(["cors", f"{base}/x", "-c", str(cfg), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "webkit"
    assert doc["results"][0]["verdict"]["js_error"] == "TypeError: Load failed"


@pytest.mark.parametrize(
    ("browser", "agent", "first"),
    [
        ("chrome", "Chrome/156.0.0.0 Safari/537.36", "Accept"),
        ("firefox", "Gecko/20100101 Firefox/153.0", "User-Agent"),
        ("webkit", "Version/60.5 Safari/605.1.15", "Origin"),
    ],
)
def test_browser_option_sends_that_engines_request(api, browser, agent, first, monkeypatch) -> None:
    """The engine's own User-Agent, headers and order on the wire (Host first, transport headers
    after; tests/cors/cors_engine_run.py compares the lists with the real engines')."""
    from probes.cors import CorsRequest, actual_headers, preflight_headers

    base, seen = api
    monkeypatch.setenv("ALBPROBE_COOKIE", "sessionid=abc")
    url = f"{base}/api/items"
    args = ["cors", url, "-X", "PUT", "-H", "Content-Type: application/json", "--data", "{}"]
    assert main([*args, "--browser", browser, "--json"]) == 0
    req = CorsRequest(url, ORIGIN, "PUT", (("Content-Type", "application/json"),))
    transport = {"host", "connection", "accept-encoding", "content-length"}
    pre, act = ([(k, v) for k, v in h if k.lower() not in transport] for h in seen.raw)
    assert [k for k, _ in seen.raw[0]][0] == "Host"
    assert pre == preflight_headers(req, browser)
    assert act == actual_headers(req, browser, cookie="sessionid=abc")
    for sent in (pre, act):
        assert dict(sent)["User-Agent"].endswith(agent)
    assert pre[0][0] == first
