"""Run `albprobe run` as a user would (a child process) against the real testbed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class RunCli:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runs = tmp / "runs"

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "albprobe", "run", "--runs-dir", str(self.runs), *args]

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        env["COLUMNS"] = "200"
        env.update(extra)
        return env

    @staticmethod
    def users_run(
        cfg: Path, run_id: str, *, users: int, duration: str, extra: tuple[str, ...] = ()
    ) -> list[str]:
        """The arguments of a closed-model run of ``users`` for ``duration`` with a config."""
        return [
            "--config",
            str(cfg),
            "--shape",
            "users",
            "--users",
            str(users),
            "--duration",
            duration,
            "--run-id",
            run_id,
            *extra,
        ]

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.cmd(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(self.tmp),
            env=self.env(**env),
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.cmd(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(self.tmp),
            env=self.env(**env),
        )

    def meta(self, run_id: str) -> dict:
        return json.loads((self.runs / run_id / "run.json").read_text())

    def sql(self, run_id: str, query: str) -> list[tuple]:
        import duckdb

        glob = str(self.runs / run_id / "requests" / "*.parquet")
        return duckdb.sql(query.replace("REQ", f"read_parquet('{glob}')")).fetchall()


@pytest.fixture
def cli(tmp_path: Path) -> RunCli:
    return RunCli(tmp_path)
