"""core.supervisor with tiny real python children: start-up errors, group stop, signal escalation."""

from __future__ import annotations

import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.errors import AlbprobeError
from core.supervisor import ChildError, ChildSpec, pid_alive, run_to_end, spawn


def _script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return not pid_alive(pid)
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_for(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_child_dying_at_start_up_is_one_line_naming_program_code_and_stderr(tmp_path):
    argv = _script(
        tmp_path,
        "dies",
        """
        import sys
        print("loading config", file=sys.stderr)
        print("ALERT: line 3: unknown keyword 'bindd'", file=sys.stderr)
        sys.exit(3)
        """,
    )
    child = spawn(ChildSpec("fakeproxy", argv))
    with pytest.raises(ChildError) as info:
        child.wait_ready(lambda: False, timeout=60)
    line = info.value.one_line()
    assert isinstance(info.value, AlbprobeError) and "\n" not in line
    assert line.startswith("fakeproxy exited with code 3 at start-up")
    assert "loading config | ALERT: line 3: unknown keyword 'bindd'" in line
    assert child.poll() == 3


def test_start_up_error_quotes_the_log_file_when_stderr_is_empty(tmp_path):
    log = tmp_path / "error.log"
    argv = _script(
        tmp_path,
        "logs",
        f"""
        open({str(log)!r}, "w").write("[ERROR] Connection in use: ('127.0.0.2', 1)\\n")
        raise SystemExit(1)
        """,
    )
    child = spawn(ChildSpec("gunicorn", argv, log=log))
    with pytest.raises(ChildError, match=r"gunicorn exited with code 1 .*Connection in use"):
        child.wait_ready(lambda: False, timeout=60)


def test_output_file_receives_stdout_and_stderr_and_names_a_missing_program(tmp_path):
    out = tmp_path / "child.log"
    argv = _script(
        tmp_path, "talks", "import sys; print('to out'); print('to err', file=sys.stderr)"
    )
    child = spawn(ChildSpec("talker", argv, output=out))
    assert _wait_for(lambda: child.poll() is not None)
    assert child.stop() == 0
    assert out.read_text().split() == ["to", "out", "to", "err"]
    with pytest.raises(ChildError, match=r"^cannot start nosuch: "):
        spawn(ChildSpec("nosuch", [str(tmp_path / "no-such-program")]))


def test_stop_ends_the_whole_process_group(tmp_path):
    """The leader exits on SIGTERM at once; its worker ignores SIGTERM and must still end."""
    pidfile = tmp_path / "worker.pid"
    argv = _script(
        tmp_path,
        "leader",
        f"""
        import subprocess, sys, time
        worker = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(worker.pid))
        time.sleep(600)
        """,
    )
    child = spawn(ChildSpec("leader", argv, stop_timeout=30))
    child.wait_ready(pidfile.exists, timeout=60)
    assert _wait_for(lambda: pidfile.read_text().strip() != "")
    worker = int(pidfile.read_text())
    assert not _gone(worker)
    assert child.stop() == -signal.SIGTERM
    assert _wait_for(lambda: _gone(worker)), f"worker {worker} outlived its group"
    assert child.poll() == -signal.SIGTERM and not child.alive()


def test_sigint_then_sigkill_when_the_child_ignores_sigint(tmp_path):
    ready, seen = tmp_path / "ready", tmp_path / "seen"
    argv = _script(
        tmp_path,
        "stubborn",
        f"""
        import signal, time
        def note(signum, frame):
            open({str(seen)!r}, "a").write(signal.Signals(signum).name + "\\n")
        signal.signal(signal.SIGINT, note)
        open({str(ready)!r}, "w").write("ok")
        while True:
            time.sleep(0.05)
        """,
    )
    child = spawn(ChildSpec("stubborn", argv, stop_signal=signal.SIGINT, stop_timeout=1.0))
    child.wait_ready(ready.exists, timeout=60)
    assert child.stop() == -signal.SIGKILL
    assert seen.read_text().split() == ["SIGINT"]  # asked first, then killed


def test_graceful_child_exits_on_its_stop_signal_without_sigkill(tmp_path):
    ready = tmp_path / "ready"
    argv = _script(
        tmp_path,
        "polite",
        f"""
        import signal, time
        # Python leaves SIGINT ignored when started with it ignored (a background job of a script)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            # ready only inside the try: a SIGINT right after the file appears is still caught
            open({str(ready)!r}, "w").write("ok")
            while True:
                time.sleep(0.05)
        except KeyboardInterrupt:
            raise SystemExit(7)
        """,
    )
    child = spawn(ChildSpec("polite", argv, stop_signal=signal.SIGINT, stop_timeout=60))
    child.wait_ready(ready.exists, timeout=60)
    assert child.stop() == 7


def test_not_ready_by_the_deadline_stops_the_child_and_says_so(tmp_path):
    argv = _script(tmp_path, "slow", "import time; time.sleep(600)")
    child = spawn(ChildSpec("slowpoke", argv))
    with pytest.raises(ChildError, match=r"^slowpoke was not listening within 0.2 s"):
        child.wait_ready(lambda: False, timeout=0.2, what="listening")
    assert child.poll() is not None


def test_run_to_end_returns_code_and_output_and_bounds_the_wait(tmp_path):
    argv = _script(
        tmp_path, "check", "import sys; print('ALERT: bad', file=sys.stderr); sys.exit(1)"
    )
    assert run_to_end("checker", argv, timeout=60) == (1, "ALERT: bad\n")
    slow = _script(tmp_path, "hang", "import time; time.sleep(600)")
    with pytest.raises(ChildError, match=r"^hanger did not finish within 0.5 s$"):
        run_to_end("hanger", slow, timeout=0.5)
