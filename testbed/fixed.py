"""A fixed-response HAProxy frontend: the load client's ceiling, with no app behind it.

Answers every request (preflights included) with a small JSON body and the CORS headers of the
testbed app, so a browser-faithful client sees exactly what it sees from the real stack. Used by the
benchmarks in bench/ to measure the client, not the server.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.supervisor import Child, ChildSpec, spawn
from testbed.haproxy import haproxy_binary
from testbed.ports import free_port, port_open

ORIGIN = "https://hakwonplus.com"


def fixed_config(port: int, origin: str = ORIGIN) -> str:
    cors = (
        f'hdr Access-Control-Allow-Origin "{origin}" hdr Access-Control-Allow-Credentials true '
        "hdr Vary Origin"
    )
    return f"""global
    maxconn 4000
defaults
    mode http
    timeout client 30s
    timeout server 30s
    timeout connect 5s
frontend fe_fixed
    bind 127.0.0.1:{port}
    http-request return status 204 {cors} hdr Access-Control-Allow-Methods "GET, POST, PUT, PATCH, DELETE, OPTIONS" hdr Access-Control-Allow-Headers "content-type, x-client, authorization" hdr Access-Control-Max-Age 600 if METH_OPTIONS
    http-request return status 200 content-type application/json {cors} string '{{"ok": true}}'
"""


class FixedResponseProxy:
    def __init__(self) -> None:
        self.port = 0
        self._proc: Child | None = None
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FixedResponseProxy:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="albfixed-")
        cfg = Path(self._dir.name) / "fixed.cfg"
        cfg.write_text(fixed_config(self.port))
        argv = [haproxy_binary(), "-db", "-f", str(cfg)]
        self._proc = spawn(ChildSpec("fixed-response haproxy", argv))
        try:
            self._proc.wait_ready(lambda: port_open("127.0.0.1", self.port), 10, "listening")
        except BaseException:
            self._proc = None
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.stop(5)
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
