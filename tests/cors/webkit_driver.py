"""Debian's WebKitGTK MiniBrowser under xvfb-run, printing its console to stdout
(--enable-write-console-messages-to-stdout=true). MiniBrowser has no script channel of its own
(W3C WebDriver through WebKitWebDriver gives verdicts but no console text), so the test page
drives itself: it long-polls its own origin for the next expression, evaluates it and posts the
result back. Same-origin polling prints nothing, so stdout holds only what the cases cause.

Used by test_cors_webkit.py. Every process started here is ended by its own handle.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from cors_browser_harness import QuietServer

MINIBROWSER_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/libexec/webkit2gtk-4.1/MiniBrowser",
)
MARK = "albprobe-mark "
# MiniBrowser prints "CONSOLE <source> <level> <text>" (source may be empty, e.g. console.log).
_CONSOLE_LINE = re.compile(
    r"^CONSOLE (?:(?:JS|SECURITY|NETWORK|XML|CSS|RENDERING|MEDIA|OTHER|HTML|CONTENTBLOCKER) )?"
    r"(?:LOG|ERROR|WARN|WARNING|INFO|DEBUG) (.*)$"
)

_PAGE = b"""<!doctype html><html><body>albprobe cors test page (WebKit)<script>
(async () => {
  for (;;) {
    let expr;
    try { expr = await (await fetch('/next', {cache: 'no-store'})).text(); }
    catch (e) { await new Promise(r => setTimeout(r, 100)); continue; }
    if (expr === '') continue;
    let value;
    try { value = await (0, eval)(expr); } catch (e) { value = 'JS error: ' + String(e); }
    await fetch('/result', {method: 'POST', body: JSON.stringify(value === undefined ? null : value)});
  }
})();
</script></body></html>"""


def find_minibrowser() -> str | None:
    if shutil.which("xvfb-run") is None:
        return None
    for path in MINIBROWSER_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return None


class SelfDrivingPage:
    """The page origin: serves the page, hands out expressions, takes results back."""

    def __init__(self) -> None:
        self.todo: queue.Queue[str] = queue.Queue()
        self.results: queue.Queue[Any] = queue.Queue()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/next"):
                    try:
                        expr = owner.todo.get(timeout=5)
                    except queue.Empty:
                        expr = ""  # the page asks again
                    self._send(expr.encode(), "text/plain; charset=utf-8")
                else:
                    self._send(_PAGE, "text/html")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                owner.results.put(json.loads(self.rfile.read(length) or b"null"))
                self._send(b"", "text/plain")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebKit:
    """One MiniBrowser on a SelfDrivingPage; console lines collected from its stdout."""

    def __init__(self, binary: str, page: SelfDrivingPage) -> None:
        self.page = page
        self.home = tempfile.mkdtemp(prefix="albprobe-webkit-")
        self.binary = binary
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        out = subprocess.run(
            ["xvfb-run", "-a", binary, "--version"], capture_output=True, text=True, timeout=60
        )
        self.version = (out.stdout.strip() or out.stderr.strip()).splitlines()[-1]

    def open_page(self, url: str) -> None:
        env = {
            **os.environ,
            "HOME": self.home,
            "XDG_CACHE_HOME": os.path.join(self.home, "cache"),
            "XDG_DATA_HOME": os.path.join(self.home, "data"),
            "WEBKIT_DISABLE_COMPOSITING_MODE": "1",
            "LIBGL_ALWAYS_SOFTWARE": "1",
        }
        self.proc = subprocess.Popen(
            [
                "xvfb-run",
                "-a",
                self.binary,
                "--enable-write-console-messages-to-stdout=true",
                "--enable-webgl=false",
                "--enable-media=false",
                url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # xvfb-run, Xvfb and MiniBrowser end together (killpg)
        )
        threading.Thread(target=self._stdout, daemon=True).start()
        if self.evaluate("location.origin", timeout=90) != url.rstrip("/"):
            raise RuntimeError(f"page {url} did not load")

    def _stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            m = _CONSOLE_LINE.match(raw.decode("utf-8", "replace").rstrip("\n"))
            if m:  # Xvfb/GTK chatter on the same stream is not console output
                with self._lock:
                    self.lines.append(m.group(1))

    def evaluate(self, expression: str, *, timeout: float = 20.0) -> Any:
        self.page.todo.put(expression)
        return self.page.results.get(timeout=timeout)

    def mark(self, label: str) -> None:
        self.evaluate(f"console.log({json.dumps(MARK + label)})")

    def console(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        shutil.rmtree(self.home, ignore_errors=True)
