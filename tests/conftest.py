"""Suite-wide rules: a skipped test in CI is a failure (CI installs every tool the suite needs, so
a skip there means a test silently stopped running)."""

from __future__ import annotations

import os

import pytest


def _skips_fail() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or bool(
        os.environ.get("ALBPROBE_NO_SKIPS")
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _skips_fail():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped and _skips_fail():
        terminalreporter.write_line(
            f"FAILED: {len(skipped)} test(s) skipped in CI, where every tool is installed "
            "(see the skip reasons above; set up the missing tool in scripts/bootstrap.sh)",
            red=True,
        )
