"""The live progress line of `albprobe run` (rich), fed from the run's progress.json."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text


class ProgressView:
    def __init__(self, console: Console, *, duration: float) -> None:
        self.console = console
        self.duration = duration
        self._live = Live(
            Text("starting ..."), console=console, refresh_per_second=4, transient=True
        )

    def __enter__(self) -> ProgressView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    def log(self, line: str) -> None:
        self._live.console.print(f"  {line}")

    def update(self, p: dict[str, Any]) -> None:
        self._live.update(Text(render_progress(p, self.duration)))


def render_progress(p: dict[str, Any], duration: float) -> str:
    elapsed = p.get("elapsed", 0.0)
    reqs, fails = p.get("requests", 0), p.get("failures", 0)
    share = f"{fails / reqs:.1%}" if reqs else "-"
    parts = [
        f"{elapsed:5.1f}/{duration:.0f}s",
        f"users {p.get('users', 0)}",
        f"{p.get('rps', 0):.0f} req/s",
        f"requests {reqs}",
        f"failed {fails} ({share})",
        f"p99 {p.get('p99') or 0:.0f} ms",
    ]
    if p.get("target"):
        parts.append(f"target {p['target']}")
    top = sorted((p.get("errors") or {}).items(), key=lambda kv: -kv[1])[:1]
    if top:
        parts.append(f"top failure: {top[0][0]} x{top[0][1]}")
    return "  " + " | ".join(parts)
