"""Headless Chromium driven over the DevTools protocol (--remote-debugging-pipe: no extra
packages, no TCP port), plus two loopback origins: a page server and a scriptable API server.

Used by test_cors_browser.py. Every process started here is ended by its own handle.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """A browser closing a kept-alive connection mid-write is normal here, not a test error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def find_chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


class Chromium:
    """One headless Chromium; CDP messages are NUL-terminated JSON on fds 3 (in) / 4 (out)."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="albprobe-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def _fds() -> None:  # in the child: put the pipe ends on fds 3 and 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            pass_fds=(3, 4, to_chrome_r, from_chrome_w),
            preexec_fn=_fds,  # noqa: PLW1509 - single-threaded at this point in the test
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._pending: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()
        self.session: str | None = None

    def _reader(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                q = self._pending.pop(msg["id"], None) if "id" in msg else None
                if q is not None:
                    q.put(msg)
                else:
                    with self._events_lock:
                        self.events.append(msg)

    def send(self, method: str, params: dict | None = None, *, timeout: float = 30.0) -> dict:
        with self._lock:
            self._next_id += 1
            mid = self._next_id
            q: queue.Queue = queue.Queue()
            self._pending[mid] = q
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        reply = q.get(timeout=timeout)
        if "error" in reply:
            raise RuntimeError(f"CDP {method}: {reply['error']}")
        return reply["result"]

    def open_page(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})
        self.session = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Log.enable", "Runtime.enable", "Audits.enable"):
            self.send(domain)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # wait for the page's origin to be live
            r = self.evaluate("location.origin")
            if r == url.rstrip("/"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"page {url} did not load")

    def evaluate(self, expression: str, *, timeout: float = 20.0) -> Any:
        r = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"JS error: {r['exceptionDetails']}")
        return r["result"].get("value")

    def log_entries(self) -> list[dict[str, Any]]:
        with self._events_lock:
            return [
                e["params"]["entry"] for e in self.events if e.get("method") == "Log.entryAdded"
            ]

    def issues(self) -> list[dict[str, Any]]:
        with self._events_lock:
            return [
                e["params"]["issue"] for e in self.events if e.get("method") == "Audits.issueAdded"
            ]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing anyway
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reason: str | None = None


@dataclass
class Seen:
    method: str
    headers: list[tuple[str, str]]
    reply_headers: list[tuple[str, str]]


class ApiServer:
    """Answers /c/<case>/... with the Reply registered for (case, "OPTIONS" or "ACTUAL");
    `$ORIGIN` in a header value is replaced by the request's Origin. Records what arrived."""

    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], Reply] = {}
        self.seen: dict[str, list[Seen]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __getattr__(self, name: str) -> Any:  # any method, even lowercase `patch`
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

            def _handle(self) -> None:
                parts = self.path.split("/")
                case = parts[2].split("?")[0] if len(parts) > 2 else ""
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                kind = "OPTIONS" if self.command == "OPTIONS" else "ACTUAL"
                sub = "/".join(parts[3:]).split("?")[0]
                reply = api.replies.get((case, f"{kind}:{sub}")) or api.replies.get((case, kind))
                if reply is None:
                    reply = Reply(404, [], b"no such case")
                origin = self.headers.get("Origin", "")
                sent = [(k, v.replace("$ORIGIN", origin)) for k, v in reply.headers]
                api.seen.setdefault(case, []).append(
                    Seen(self.command, list(self.headers.items()), sent)
                )
                self.send_response_only(reply.status, reply.reason)
                for k, v in sent:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PageServer:
    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = b"<!doctype html><html><body>albprobe cors test page</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
