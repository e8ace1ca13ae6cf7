"""The ALB's listeners on the testbed: HTTPS (port 443's role) with a certificate made at start-up
for api.hakwonplus.com and the loopback address, HTTP/2 offered by ALPN, verified against the
testbed CA; HTTP (port 80's role) answering the ALB's 301 to HTTPS, preflights included."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import ssl
from pathlib import Path

import httpx
import pytest

from testbed import TestbedConfig
from testbed.haproxy import HaproxyLayout, render_config
from testbed.tls import API_HOST, generate

ORIGIN = "https://hakwonplus.com"

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy missing")


def _alpn(port: int, ca: Path, server_hostname: str) -> tuple[str | None, dict]:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.selected_alpn_protocol(), tls.getpeercert()


def test_certificate_names_the_api_and_loopback(tmp_path) -> None:
    from cryptography import x509

    files = generate(tmp_path)
    pem = files.server_pem.read_bytes()
    assert b"PRIVATE KEY" in pem and b"PRIVATE KEY" not in files.ca_cert.read_bytes()
    leaf = x509.load_pem_x509_certificate(pem)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [API_HOST]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    leaf.verify_directly_issued_by(ca)  # raises when the CA did not sign it


def test_https_and_redirect_frontends_are_rendered() -> None:
    layout = HaproxyLayout(
        18080,
        "127.0.0.2",
        18000,
        Path("/tmp/x.sock"),
        None,
        Path("/tmp/core.sock"),
        https_port=18443,
        tls_pem=Path("/tmp/server.pem"),
        redirect_port=18081,
    )
    text = render_config(TestbedConfig(app_port=18000), layout)
    assert "bind 127.0.0.1:18443 ssl crt /tmp/server.pem alpn h2,http/1.1" in text
    fe = text.split("frontend fe_redirect")[1]
    assert "bind 127.0.0.1:18081" in fe and "code 301" in fe and ":18443%[capture.req.uri]" in fe
    bare = dataclasses.replace(layout, https_port=None, tls_pem=None, redirect_port=None)
    plain = render_config(TestbedConfig(app_port=18000), bare)
    assert "ssl crt" not in plain and "fe_redirect" not in plain


def test_listener_is_validated() -> None:
    with pytest.raises(ValueError, match="listener must be one of"):
        TestbedConfig(listener="ftp")
    with pytest.raises(ValueError, match="needs tls on"):
        TestbedConfig(listener="https", tls=False)


@needs_haproxy
def test_https_verified_h2_offered_and_redirect(make_testbed) -> None:
    tb = make_testbed(listener="https")
    assert tb.url == tb.https_url and tb.https_url.startswith("https://127.0.0.1:")
    assert tb.ca_file is not None and tb.ca_file.is_file()
    tb.wait_for_health("UP")
    # Verified against the testbed CA, by IP and (SNI + hostname check) by the API's name.
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tb.ca_file))) as c:
        r = c.get(f"{tb.https_url}/api/fast", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    proto, cert = _alpn(tb.https_port, tb.ca_file, API_HOST)
    assert proto == "h2"  # HTTP/2 offered by ALPN, as the ALB's HTTPS listener does
    assert ("DNS", API_HOST) in cert["subjectAltName"]
    # The system's CAs do not know the testbed CA: verification is on and refuses it.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tb.https_url}/api/fast")
    # Port 80's role: the ALB's 301 to HTTPS, same host, path and query; a preflight too.
    pre = httpx.options(
        f"{tb.redirect_url}/api/items?x=1",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 301
    assert pre.headers["location"] == f"{tb.https_url}/api/items?x=1"
    assert pre.headers["server"] == "awselb/2.0"
    assert "access-control-allow-origin" not in pre.headers
    tb.stop()
    assert tb.listening_ports() == []


@needs_haproxy
def test_no_tls_means_no_extra_listeners(make_testbed) -> None:
    tb = make_testbed(tls=False)
    assert tb.https_url == "" and tb.redirect_url == "" and tb.ca_file is None
    assert tb.url == tb.http_url
