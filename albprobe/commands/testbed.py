"""`albprobe testbed up|fault|status`: the local ALB stand-in, in the foreground."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from core.errors import ConfigError

testbed_app = typer.Typer(
    help="The local testbed: HAProxy as the ALB -> gunicorn -> Django.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(testbed_app, name="testbed")


def build_config(**options):
    """TestbedConfig from the CLI options (names as in TestbedConfig, except port and fault)."""
    from testbed import TestbedConfig

    options["front_port"] = options.pop("port")
    options["faults"] = frozenset(options.pop("fault"))
    if options.get("targets", 1) < 1:
        raise ConfigError(
            f"--targets {options['targets']}: a target group needs at least one target",
            hint="pass --targets 1 or more",
        )
    try:
        return TestbedConfig(**options)
    except ValueError as exc:
        raise ConfigError(f"testbed: {exc}") from None


@testbed_app.command("up")
def up(
    fault: list[str] = typer.Option(
        [],
        "--fault",
        "-f",
        help="Fault switch to start with (repeatable): target-down, hang, cors-misconfig, health-host, blocked-port, keepalive-race.",
    ),
    port: int = typer.Option(8080, help="Proxy (ALB) port on 127.0.0.1; 0 = a free port."),
    https_port: int = typer.Option(
        8443, help="Port 443's role: HTTPS (testbed CA, ALPN h2); 0 = a free port."
    ),
    redirect_port: int = typer.Option(
        8081, help="Port 80's role: the ALB's 301 to HTTPS; 0 = a free port."
    ),
    app_port: int = typer.Option(
        8000, help="gunicorn (target) port, like production; 0 = a free port."
    ),
    target_ip: str = typer.Option(
        "127.0.0.2", help="The target's 'private IP' (what the health checker sends as Host)."
    ),
    worker_class: str = typer.Option("sync", help="gunicorn worker class: sync or gthread."),
    workers: int = typer.Option(2, help="gunicorn workers."),
    threads: int = typer.Option(4, help="Threads per worker (gthread)."),
    timeout: float = typer.Option(30.0, help="gunicorn --timeout (s)."),
    keepalive: float = typer.Option(2.0, help="gunicorn --keep-alive (s)."),
    idle_timeout: float = typer.Option(60.0, help="The ALB idle timeout (s)."),
    health_interval: float = typer.Option(
        2.0, help="Health check interval (s); the ALB default is 30."
    ),
    health_timeout: float = typer.Option(
        1.0, help="Health check timeout (s); the ALB default is 5."
    ),
    healthy_threshold: int = typer.Option(2, help="Consecutive passes to become healthy."),
    unhealthy_threshold: int = typer.Option(2, help="Consecutive failures to become unhealthy."),
    targets: int = typer.Option(
        1, help="Targets in the group: each its own gunicorn on 127.0.0.2, 127.0.0.3, ..."
    ),
    load_balancing: str = typer.Option(
        "round_robin",
        help="round_robin or least_outstanding_requests (the target group's algorithm).",
    ),
    deregistration_delay: float = typer.Option(
        300.0, help="Seconds a deregistered target drains (the ALB's default is 300)."
    ),
    graceful_timeout: float = typer.Option(5.0, help="gunicorn --graceful-timeout (s)."),
    log_dir: Path | None = typer.Option(
        None, help="Where HAProxy and gunicorn logs go (default: a temp folder)."
    ),
) -> None:
    """Run the testbed in the foreground until Ctrl-C, printing its URLs and health changes."""
    cfg = build_config(**locals())  # first statement: locals() is exactly the options above
    from rich.console import Console

    from testbed import Testbed
    from testbed.control import ControlServer

    console = Console(highlight=False)
    stop = {"now": False}

    def _stop(signum, frame):  # SIGTERM behaves like Ctrl-C
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    tb = Testbed(cfg)
    tb.start()
    control = ControlServer(tb, tb.stats_socket.parent / "control.sock")
    try:
        control.start()
        d = tb.describe()
        console.print(
            f"[bold]albprobe testbed[/bold] up (faults: {', '.join(d['faults']) or 'none'})"
        )
        console.print(f"  proxy (ALB)  {tb.url}        <- point browsers / albprobe here")
        if tb.ca_file:
            console.print(f"  HTTPS (443)  {tb.https_url}       trust {tb.ca_file}")
            console.print(f"  HTTP (80)    {tb.redirect_url}        301 to HTTPS")
        console.print(
            f"  target       {tb.app_url}  gunicorn {d['capacity']['worker_class']} x{d['capacity']['workers']}"
        )
        for label in d["targets"]:
            console.print(
                f"  target       http://{label}  gunicorn {d['capacity']['worker_class']} x{d['capacity']['workers']}"
            )
        if tb.stats_url:
            console.print(f"  stats        {tb.stats_url}")
        console.print(f"  logs         {tb.log_dir}")
        console.print(
            "  toggle faults from another terminal: albprobe testbed fault NAME on|off; Ctrl-C stops"
        )
        last: dict[str, tuple[str, str]] = {}
        while not stop["now"]:
            for label, st in tb.target_stats():
                now = (st.status.split()[0], st.check_status)
                if now != last.get(label):
                    stamp = time.strftime("%H:%M:%S")
                    console.print(
                        f"  {stamp} target {label} {st.status} ({st.check_status} {st.check_code} {st.last_chk})".rstrip()
                    )
                    last[label] = now
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        control.stop()
        tb.stop()
        console.print("testbed stopped; every child process ended")


@testbed_app.command("fault")
def fault_cmd(
    name: str = typer.Argument(..., help="Fault switch name; NAME:N for target N only."),
    state: str = typer.Argument(..., help="on or off"),
) -> None:
    """Toggle a fault on the running testbed."""
    from core.errors import AlbprobeError
    from testbed.control import send

    if state not in ("on", "off"):
        raise ConfigError(f"state must be 'on' or 'off', got {state!r}")
    reply = send(f"fault {name} {state}")
    if not reply.get("ok"):
        raise AlbprobeError(reply.get("error", "the testbed refused the command"))
    typer.echo(f"faults now: {', '.join(reply['faults']) or 'none'}")


@testbed_app.command("status")
def status_cmd() -> None:
    """Show the running testbed's target health and active faults."""
    from core.errors import AlbprobeError
    from testbed.control import send

    reply = send("status")
    if not reply.get("ok"):
        raise AlbprobeError(reply.get("error", "status failed"))
    typer.echo(f"proxy {reply['urls']['proxy']}")
    for t in reply["targets"]:
        typer.echo(
            f"  target {t['target']} {t['status']} ({t['check']} {t['code']} {t['last_check']})"
        )
    typer.echo(f"faults: {', '.join(reply['faults']) or 'none'}")


def _send_ok(command: str) -> None:
    from core.errors import AlbprobeError
    from testbed.control import send

    reply = send(command)
    if not reply.get("ok"):
        raise AlbprobeError(reply.get("error", "the testbed refused the command"))


@testbed_app.command("register")
def register_cmd(target: int = typer.Argument(..., help="Target number (1-based).")) -> None:
    """Register a target: it gets traffic once it passes its health checks."""
    _send_ok(f"register {target}")
    typer.echo(f"target {target} registered (initial until healthy)")


@testbed_app.command("deregister")
def deregister_cmd(target: int = typer.Argument(..., help="Target number (1-based).")) -> None:
    """Deregister a target: it drains for deregistration_delay, then its connections close."""
    _send_ok(f"deregister {target}")
    typer.echo(f"target {target} draining")


@testbed_app.command("worker-kill")
def worker_kill_cmd(target: int = typer.Argument(1, help="Target number (1-based).")) -> None:
    """SIGKILL one gunicorn worker of a target while it serves a request (the OOM pattern)."""
    _send_ok(f"worker-kill {target}")
    typer.echo(f"killing a busy worker of target {target}")


@testbed_app.command("deploy")
def deploy_cmd(
    order: str = typer.Option(
        "correct", help="correct, stop-first or early-register (see docs/testbed.md)."
    ),
) -> None:
    """Start a rolling deploy of every target on the running testbed."""
    _send_ok(f"deploy {order}")
    typer.echo(f"deploy ({order}) started; watch the health lines of `albprobe testbed up`")
