"""Shared fixtures: synthetic run directories for every failure mode (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import synth


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def mode_runs(runs_root: Path) -> dict[str, Path]:
    """mode -> run directory with every input present."""
    return {m: synth.write(runs_root, m) for m in synth.MODES}
