"""Control a running testbed from another terminal: a line protocol on a unix socket.

`albprobe testbed up` serves it; `albprobe testbed fault NAME on|off` and `albprobe testbed status`
talk to it. The socket path of the running testbed is published in a small pointer file.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from core.errors import AlbprobeError
from core.supervisor import pid_alive
from testbed.errors import TestbedError
from testbed.stack import Testbed


def pointer_file() -> Path:
    base = os.environ.get("ALBPROBE_HOME") or os.path.join(os.path.expanduser("~"), ".albprobe")
    return Path(base) / "testbed.json"


def handle_command(tb: Testbed, line: str) -> dict[str, Any]:
    """Execute one control command; pure dispatch over the Testbed API."""
    parts = line.split()
    if parts[:1] == ["fault"] and len(parts) == 3 and parts[2] in ("on", "off"):
        name, _, index = parts[1].partition(":")
        try:
            if index and not index.isdigit():
                raise TestbedError(f"fault {parts[1]!r}: the target is a number, e.g. {name}:2")
            tb.set_fault(name, parts[2] == "on", int(index) if index else None)
        except AlbprobeError as exc:  # TestbedError, or a child that would not start
            return {"ok": False, "error": exc.one_line()}
        faults = sorted(tb.faults) + [f"{f}:{s.index}" for s in tb.slots for f in sorted(s.faults)]
        return {"ok": True, "faults": faults}
    if parts == ["status"]:
        targets = [
            {
                "target": label,
                "status": st.status,
                "check": st.check_status,
                "code": st.check_code,
                "last_check": st.last_chk,
                "in_flight": st.scur,
            }
            for label, st in tb.target_stats()
        ]
        return {
            "ok": True,
            "faults": sorted(tb.faults),
            "urls": tb.describe()["urls"],
            "target": targets[0],
            "targets": targets,
        }
    actions = {
        "register": tb.register,
        "deregister": tb.deregister,
        "worker-kill": tb.kill_worker_soon,
    }
    if len(parts) == 2 and parts[0] in actions and parts[1].isdigit():
        try:
            actions[parts[0]](int(parts[1]))
        except AlbprobeError as exc:
            return {"ok": False, "error": exc.one_line()}
        return {"ok": True}
    if len(parts) == 2 and parts[0] == "deploy":
        try:
            tb.deploy(parts[1])
        except AlbprobeError as exc:
            return {"ok": False, "error": exc.one_line()}
        return {"ok": True}
    return {
        "ok": False,
        "error": f"unknown command {line!r}; use 'fault NAME[:N] on|off', 'register N', "
        "'deregister N', 'worker-kill N', 'deploy ORDER' or 'status'",
    }


class ControlServer:
    def __init__(self, tb: Testbed, path: Path) -> None:
        self.tb = tb
        self.path = path
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(self.path))
        s.listen(4)
        s.settimeout(0.5)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, name="testbed-control", daemon=True)
        self._thread.start()
        ptr = pointer_file()
        ptr.parent.mkdir(parents=True, exist_ok=True)
        ptr.write_text(
            json.dumps({"pid": os.getpid(), "socket": str(self.path), **self.tb.describe()["urls"]})
        )

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(30)
                try:
                    line = conn.makefile("r").readline().strip()
                    reply = handle_command(self.tb, line)
                except Exception as exc:  # report, keep serving
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply).encode() + b"\n")

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock:
            sock.close()
        if self._thread:
            self._thread.join(2)
        with contextlib.suppress(OSError):
            self.path.unlink()
        ptr = pointer_file()
        with contextlib.suppress(OSError, ValueError):
            if json.loads(ptr.read_text()).get("pid") == os.getpid():
                ptr.unlink()


def send(command: str, timeout: float = 60.0) -> dict[str, Any]:
    """Send a command to the running testbed named by the pointer file."""
    ptr = pointer_file()
    try:
        info = json.loads(ptr.read_text())
        if not pid_alive(int(info["pid"])):
            raise OSError("stale pointer file")
    except (OSError, ValueError, KeyError):
        raise TestbedError(
            "no testbed is running", hint="start one with `albprobe testbed up`"
        ) from None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(info["socket"])
        except OSError as exc:
            raise TestbedError(
                f"cannot reach the testbed's control socket {info['socket']}: {exc}"
            ) from None
        s.sendall(command.encode() + b"\n")
        return json.loads(s.makefile("r").readline())
