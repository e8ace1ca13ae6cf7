"""The one supervisor of every child process albprobe starts: HAProxy, gunicorn, the latency relay,
the fixed-response frontend and Locust.

Every child gets its own session, so it leads its own process group. Two reasons: a terminal's
Ctrl-C reaches albprobe alone, which then stops its children in order (the load first, then the
testbed, recording as it goes); and the whole tree (gunicorn's workers, Locust's --processes
workers) can be ended through the group.

Stopping is one order for all: the child's stop signal to the leader, up to ``stop_timeout`` s for it
to exit, then SIGKILL to the group. Once the leader has exited the group is SIGKILLed again, before
the leader is reaped (a zombie's id cannot be reused), so no worker outlives it.

A child that dies while albprobe waits for it to become ready is an AlbprobeError naming the
program, its exit code and the tail of its log or stderr, on one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.errors import AlbprobeError

_POLL = 0.05  # seconds between checks while waiting on a condition


class ChildError(AlbprobeError):
    """A child died at start-up or never became ready."""


@dataclass(frozen=True)
class ChildSpec:
    """How to start and stop one child.

    ``output``: stdout and stderr go to this file (truncated at start); without it stdout is
    discarded and stderr kept in an anonymous temporary file for the error message. ``log``: another
    file whose tail explains a failed start (gunicorn's --error-logfile, say)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    output: Path | None = None
    log: Path | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 5.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _tail(path: Path | None, fh: IO[bytes] | None, lines: int) -> str:
    text = ""
    if fh is not None:
        with contextlib.suppress(OSError, ValueError):
            fh.seek(0)
            text = fh.read()[-8192:].decode(errors="replace")
    if not text.strip() and path is not None:
        with contextlib.suppress(OSError), open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            text = f.read().decode(errors="replace")
    rows = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(rows[-lines:]) or "(no output)"


class Child:
    """One started child process; see the module docstring for the stop order."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self._stderr: IO[bytes] | None = None
        self._code: int | None = None
        if spec.output is not None:
            out: IO[bytes] | int = open(spec.output, "wb")  # noqa: SIM115 - handed to the child
            err: IO[bytes] | int = subprocess.STDOUT
        else:
            out = subprocess.DEVNULL
            self._stderr = err = tempfile.TemporaryFile(prefix=f"albprobe-{spec.name}-")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                list(spec.argv),
                env=dict(spec.env) if spec.env is not None else None,
                cwd=str(spec.cwd) if spec.cwd else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as exc:
            self._close()
            raise ChildError(f"cannot start {spec.name}: {exc}") from None
        finally:
            if not isinstance(out, int):
                out.close()  # the child has its own copy

    # ---- state -------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def poll(self) -> int | None:
        """The exit code once the leader has exited, else None. Does not reap the leader: until
        stop() or kill() its id (and so its group's) cannot be reused, and the group can still
        be ended safely."""
        if self._proc.returncode is not None:
            return self._proc.returncode
        if self._code is None:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped elsewhere
                return self._proc.poll()
            if info is not None:
                exited = info.si_code == os.CLD_EXITED
                self._code = info.si_status if exited else -info.si_status
        return self._code

    def alive(self) -> bool:
        return self.poll() is None

    def tail(self, lines: int = 3) -> str:
        """The last lines of the child's output (stderr or output file), else of its log."""
        if self.spec.output is not None:
            return _tail(self.spec.output, None, lines)
        text = _tail(None, self._stderr, lines)
        return _tail(self.spec.log, None, lines) if text == "(no output)" else text

    # ---- start-up ----------------------------------------------------------------------------
    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Wait until ``ready()``; a child that exits first, or a deadline passed, stops the child
        and raises ChildError (one line: program, exit code, tail of its output)."""
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return
            code = self.poll()
            if code is not None:
                tail = self.tail()
                self.stop()
                raise ChildError(f"{self.spec.name} exited with code {code} at start-up: {tail}")
            if time.monotonic() > deadline:
                tail = self.tail()
                self.stop()
                raise ChildError(f"{self.spec.name} was not {what} within {timeout:g} s: {tail}")
            time.sleep(_POLL)

    # ---- signals and stopping ----------------------------------------------------------------
    def send(self, sig: int) -> None:
        """A signal to the leader only (SIGHUP to gunicorn's master reloads its workers)."""
        if self.alive():  # unreaped, so the id is still this child's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL)
        return True

    def _kill_group(self) -> None:
        if self._proc.returncode is None:  # an unreaped leader keeps the group id ours
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def stop(self, timeout: float | None = None, sig: int | None = None) -> int | None:
        """The stop signal (``sig`` or the spec's), ``timeout`` s to exit, then SIGKILL to the
        group; the group is always ended. Returns the exit code."""
        timeout = self.spec.stop_timeout if timeout is None else timeout
        sig = self.spec.stop_signal if sig is None else sig
        if self.alive():  # unreaped, so the id is still this child's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            self._wait_exit(timeout)
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL the whole group now (a crashed target) and reap the leader."""
        self._kill_group()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:  # not ours to hang on; report it alive
            return None
        finally:
            self._close()
        return self._proc.returncode

    def _close(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def spawn(spec: ChildSpec) -> Child:
    """Start a child in its own session; see Child."""
    return Child(spec)


def run_to_end(name: str, argv: Sequence[str], timeout: float) -> tuple[int, str]:
    """A short-lived child (a config check, say), in its own session: (exit code, its stdout and
    stderr). One that cannot start or outlasts ``timeout`` is a ChildError."""
    try:
        res = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
    except OSError as exc:
        raise ChildError(f"cannot start {name}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise ChildError(f"{name} did not finish within {timeout:g} s") from None
    return res.returncode, res.stderr + res.stdout
