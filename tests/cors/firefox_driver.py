"""Headless Debian firefox-esr driven over its built-in WebDriver BiDi (--remote-debugging-port,
a websocket; no downloaded driver). CORS errors arrive as BiDi ``log.entryAdded`` events, but
Firefox does not send console *warnings* there; so the test reads the page's whole console
(errors, warnings and the marks it logs between cases, in order) from the console service
(``Services.console``) with a script in the browser's chrome window, which the same BiDi session
reaches with ``--remote-allow-system-access`` and ``"moz:scope": "chrome"``, and checks that
BiDi's errors are the same lines.

Used by test_cors_firefox.py. The process is ended by its own handle.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any

FIREFOX_CANDIDATES = ("/usr/bin/firefox-esr", "/usr/bin/firefox")
MARK = "albprobe-mark "


def find_firefox() -> str | None:
    for path in FIREFOX_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("firefox-esr")


_PREFS = {
    # quiet, offline-safe profile
    "app.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.http.speculative-parallel-limit": 0,
    "remote.prefs.recommended": True,
}


class Firefox:
    """One headless Firefox with a BiDi session on one tab."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="albprobe-firefox-")
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for k, v in _PREFS.items():
                f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-remote",
                "--profile",
                self.profile,
                "--remote-debugging-port=0",
                "--remote-allow-system-access",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"},
        )
        self.stderr_lines: list[str] = []
        ws_url: queue.Queue[str] = queue.Queue()

        def _stderr() -> None:
            assert self.proc.stderr is not None
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stderr_lines.append(line)
                m = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
                if m:
                    ws_url.put(m.group(1))

        threading.Thread(target=_stderr, daemon=True).start()
        self._stack = contextlib.ExitStack()
        try:
            self._connect(ws_url)
        except BaseException:
            self.close()
            raise

    def _connect(self, ws_url: queue.Queue[str]) -> None:
        from websockets.sync.client import connect

        url = ws_url.get(timeout=60)
        self.ws = self._stack.enter_context(
            connect(url.rstrip("/") + "/session", max_size=None, open_timeout=30)
        )
        self._next_id = 0
        self._pending: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()
        caps = self.send("session.new", {"capabilities": {}})["capabilities"]
        self.version = f"{caps.get('browserName', 'firefox')} {caps.get('browserVersion', '?')}"
        tree = self.send("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]
        self.send("session.subscribe", {"events": ["log.entryAdded"]})
        chrome = self.send("browsingContext.getTree", {"moz:scope": "chrome"})
        self.chrome_context = chrome["contexts"][0]["context"]

    def _reader(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except Exception:  # noqa: BLE001 - socket closed: the reader ends
                return
            msg = json.loads(raw)
            q = self._pending.pop(msg["id"], None) if msg.get("id") is not None else None
            if q is not None:
                q.put(msg)
            elif msg.get("type") == "event":
                with self._events_lock:
                    self.events.append(msg)

    def send(self, method: str, params: dict, *, timeout: float = 30.0) -> dict:
        with self._lock:
            self._next_id += 1
            mid = self._next_id
            q: queue.Queue = queue.Queue()
            self._pending[mid] = q
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        reply = q.get(timeout=timeout)
        if reply.get("type") == "error":
            raise RuntimeError(f"BiDi {method}: {reply.get('error')}: {reply.get('message')}")
        return reply["result"]

    def open_page(self, url: str) -> None:
        self.send(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.evaluate("location.origin") == url.rstrip("/"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"page {url} did not load")

    def evaluate(self, expression: str, *, timeout: float = 20.0, chrome: bool = False) -> Any:
        r = self.send(
            "script.evaluate",
            {
                "expression": expression,
                "target": {"context": self.chrome_context if chrome else self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
            timeout=timeout,
        )
        if r.get("type") == "exception":
            raise RuntimeError(f"JS error: {r.get('exceptionDetails')}")
        return r["result"].get("value")

    def log_entries(self) -> list[dict[str, Any]]:
        with self._events_lock:
            return [e["params"] for e in self.events if e.get("method") == "log.entryAdded"]

    def mark(self, label: str) -> None:
        """A line in the console service between cases (console service keeps the order)."""
        self.evaluate(f"Services.console.logStringMessage({json.dumps(MARK + label)})", chrome=True)

    def console(self) -> list[str]:
        """The console service's script errors and warnings and marks, oldest first."""
        raw = self.evaluate(
            "JSON.stringify(Services.console.getMessageArray().filter(m =>"
            " m instanceof Ci.nsIScriptError ? !/^(chrome|resource):/.test(m.sourceName)"
            " : m.message.startsWith(" + json.dumps(MARK) + "))"
            ".map(m => m instanceof Ci.nsIScriptError ? m.errorMessage : m.message))",
            chrome=True,
        )
        return json.loads(raw)

    def bidi_errors(self) -> list[str]:
        """The page's error-level ``log.entryAdded`` texts (BiDi's own channel)."""
        return [
            e["text"]
            for e in self.log_entries()
            if e.get("type") == "javascript" and e.get("level") == "error"
        ]

    def close(self) -> None:
        if hasattr(self, "ws"):
            with contextlib.suppress(Exception):  # closing anyway
                self.send("browser.close", {}, timeout=5)
        with contextlib.suppress(Exception):
            self._stack.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.profile, ignore_errors=True)
