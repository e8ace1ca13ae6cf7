"""`albprobe demo`: the README's first command, against the local testbed."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def _browser_pair(base: str, origin: str) -> list[tuple[str, int, str, str]]:
    """A browser's preflight + POST, summarised as (kind, status, server, allow-origin)."""
    import httpx

    rows = []
    with httpx.Client(timeout=15) as c:
        pre = c.options(
            base + "/api/items",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-client",
            },
        )
        rows.append(
            (
                "preflight OPTIONS /api/items",
                pre.status_code,
                pre.headers.get("server", "-"),
                pre.headers.get("access-control-allow-origin", "(none)"),
            )
        )
        act = c.post(
            base + "/api/items",
            json={"title": "demo"},
            headers={"Origin": origin, "X-Client": "albprobe"},
        )
        rows.append(
            (
                "actual POST /api/items",
                act.status_code,
                act.headers.get("server", "-"),
                act.headers.get("access-control-allow-origin", "(none)"),
            )
        )
    return rows


def demo() -> None:
    """Bring the testbed up, send browser-style requests through the proxy, kill the target, tear down."""
    from rich.console import Console
    from rich.table import Table

    from albprobe.config import DEFAULT_ORIGIN
    from testbed import Testbed, TestbedConfig

    console = Console(highlight=False)
    cfg = TestbedConfig(health_interval=0.5, health_timeout=0.5)
    console.print(
        "[bold]albprobe demo[/bold]: starting the testbed (HAProxy as the ALB -> gunicorn -> Django)"
    )
    with Testbed(cfg) as tb:
        console.print(f"  proxy {tb.url}  target {tb.app_url}")
        table = Table("phase", "request", "status", "Server", "Access-Control-Allow-Origin")
        tb.wait_for_health("UP", 15)
        for row in _browser_pair(tb.url, DEFAULT_ORIGIN):
            table.add_row("healthy", row[0], str(row[1]), row[2], row[3])
        console.print("  killing gunicorn (target-down) ...")
        tb.set_fault("target-down", True)
        for row in _browser_pair(tb.url, DEFAULT_ORIGIN):
            table.add_row("target down", row[0], str(row[1]), row[2], row[3])
        st = tb.wait_for_health("DOWN", 15)
        console.print(table)
        console.print(
            f"  health check: target {st.status} ({st.check_status} {st.last_chk}). The 502 came from the "
            "proxy (Server: awselb/2.0) and carries no Access-Control-Allow-Origin, so a browser reports "
            "it as a CORS error."
        )
    console.print("testbed stopped")
