"""gunicorn serving the testbed app: start, kill (target-down), reload (settings faults)."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from core.supervisor import Child, ChildSpec, spawn

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class GunicornSpec:
    bind_host: str
    port: int
    worker_class: str
    workers: int
    threads: int
    timeout: float
    keepalive: float
    error_log: Path
    state_file: Path
    label: str = ""  # ip:port, the X-Albprobe-Target header
    busy_dir: Path | None = None  # where workers mark themselves busy (worker-kill)
    graceful_timeout: float = 5.0
    max_requests: int = 0
    max_requests_jitter: int = 0

    def argv(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "testbed.app.wsgi:application",
            "--config",
            str(REPO_ROOT / "testbed" / "app" / "gunicorn_conf.py"),
            "--bind",
            f"{self.bind_host}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--timeout",
            f"{self.timeout:g}",
            "--keep-alive",
            f"{self.keepalive:g}",
            "--graceful-timeout",
            f"{self.graceful_timeout:g}",
            "--error-logfile",
            str(self.error_log),
            "--log-level",
            "info",
            "--capture-output",
        ]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        if self.max_requests:
            args += ["--max-requests", str(self.max_requests)]
            args += ["--max-requests-jitter", str(self.max_requests_jitter)]
        return args


class GunicornProcess:
    """A gunicorn master in its own session (core.supervisor), so a terminal's Ctrl-C reaches
    albprobe first and the master and its workers can be ended together through the group."""

    def __init__(self, spec: GunicornSpec) -> None:
        self.spec = spec
        self.proc: Child | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> int:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "testbed.app.settings"
        env["ALBPROBE_TESTBED_STATE"] = str(self.spec.state_file)
        env["ALBPROBE_TARGET"] = self.spec.label
        if self.spec.busy_dir is not None:
            env["ALBPROBE_BUSY_DIR"] = str(self.spec.busy_dir)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.proc = spawn(
            ChildSpec(
                "gunicorn",
                self.spec.argv(),
                env=env,
                cwd=REPO_ROOT,
                log=self.spec.error_log,
                stop_timeout=self.spec.graceful_timeout + 3.0,
            )
        )
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def reload(self) -> None:
        """SIGHUP: gunicorn boots new workers, which re-read the settings (faults) file."""
        if self.proc is not None:
            self.proc.send(signal.SIGHUP)

    def kill(self) -> int | None:
        """SIGKILL the master and its workers (the process group it leads): a crashed target."""
        if self.proc is None:
            return None
        pid = self.proc.pid
        self.proc.kill()
        self.proc = None
        return pid

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM (graceful: workers finish their requests within --graceful-timeout), then
        SIGKILL to the group: no worker is left behind."""
        if self.proc is None:
            return
        self.proc.stop(self.spec.graceful_timeout + 3.0 if timeout is None else timeout)
        self.proc = None

    def worker_pids(self) -> list[int]:
        """The master's children (its workers), from /proc."""
        if self.proc is None:
            return []
        master, pids = self.proc.pid, []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == master:
                pids.append(int(stat.parent.name))
        return sorted(pids)
