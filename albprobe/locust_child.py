"""The Locust child of `albprobe run`: its command line, its effective config, its start through
core.supervisor."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Config, config_to_toml
from core.rundir import RunDir
from core.supervisor import Child, ChildSpec, spawn

if TYPE_CHECKING:
    from albprobe.runner import RunOptions

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO_ROOT / "locustfiles" / "browser.py"


def locust_command(
    opts: RunOptions, host: str, rundir: RunDir, config_path: Path, web_port: int | None
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "probes.loadgen.launch",  # Locust, started a quarter second faster
        "-f",
        str(LOCUSTFILE),
        "--host",
        host,
        "--albprobe-run-dir",
        str(rundir.path),
        "--albprobe-config",
        str(config_path),
        "--albprobe-shape",
        opts.shape,
        "--stop-timeout",
        "2",
        "--csv",
        str(rundir.path / "locust" / "locust"),
        "--html",
        str(rundir.path / "locust" / "report.html"),
        "--loglevel",
        "INFO",
        "--exit-code-on-error",
        "0",
    ]
    if opts.replay is not None:
        # The plan's offset 0 is fixed now, on the clock the fault schedule follows too.
        opts.replay.start = time.time() + opts.replay.lead
        cmd += [
            "--albprobe-replay-plan",
            str(opts.replay.plan),
            "--albprobe-replay-start",
            repr(opts.replay.start),
            "--albprobe-replay-speed",
            repr(opts.replay.speed),
        ]
    if opts.workers > 0:
        # Locust's master port is 5557 unless told: two distributed runs on one machine would
        # collide (the second exits 1). A free port, for the master and its forked workers.
        from testbed.ports import free_port

        port = str(free_port())
        cmd += ["--processes", str(opts.workers), "--albprobe-processes", str(opts.workers)]
        cmd += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port]
        cmd += ["--master-host", "127.0.0.1", "--master-port", port]
    if opts.web_ui and web_port:
        cmd += [
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web_port),
            "--autostart",
            "--autoquit",
            "5",
        ]
    else:
        cmd += ["--headless", "--only-summary"]
    return cmd


def write_effective_config(cfg: Config, path: Path) -> None:
    """The locust process reads the config back from TOML; write the effective one (no secrets)."""
    path.write_text(config_to_toml(cfg), encoding="utf-8")


def start_locust(
    opts: RunOptions, host: str, rundir: RunDir, meta: dict[str, Any], log: Callable[[str], None]
) -> Child:
    """Locust in its own session and process group (core.supervisor): a terminal's Ctrl-C reaches
    albprobe, which stops it in order, and the workers forked by --processes end with it.

    Stopped with SIGINT, not SIGTERM: in a headless shape run Locust waits on the shape before it
    installs its SIGTERM handler, but it catches KeyboardInterrupt there and shuts down in order
    (final worker reports, summary). 30 s for that, then SIGKILL to the group."""
    cfg_path = rundir.path / "locust" / "albprobe.toml"
    write_effective_config(opts.config, cfg_path)
    web_port = None
    if opts.web_ui:
        from testbed.ports import free_port

        web_port = free_port()
        meta["web_ui"] = f"http://127.0.0.1:{web_port}"
        rundir.write_meta(meta)
        log(f"Locust web UI: {meta['web_ui']}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return spawn(
        ChildSpec(
            "locust",
            locust_command(opts, host, rundir, cfg_path, web_port),
            env=env,
            cwd=REPO_ROOT,
            output=rundir.path / "locust" / "locust.log",
            stop_signal=signal.SIGINT,
            stop_timeout=30.0,
        )
    )
