"""A health-check sidecar: answers `GET /health` with 200 on the target's address, whatever the app
is doing. `deploy-early-register` points the target group's health check at it (the ALB's health
check port override, aimed at a sidecar or an agent port), so a new target passes its checks before
its app listens, and the ALB sends it traffic that is refused (502)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class HealthSidecar:
    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    def open(self) -> int:
        self._server = ThreadingHTTPServer((self.host, 0), _Ok)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, name="health-sidecar", daemon=True
        ).start()
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
