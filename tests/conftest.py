"""Suite-wide rules: a skipped test in CI is a failure (CI installs every tool the suite needs, so
a skip there means a test silently stopped running)."""

from __future__ import annotations

import os

import pytest


def _port_band() -> str:
    """Each parallel worker (pytest-xdist's gw0, gw1, ...) picks its ports from its own band,
    below the kernel's ephemeral range: two workers' testbeds never pick the same port, and no
    outgoing connection takes a picked port before HAProxy binds it (testbed/ports.py)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    n = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    width = 1000
    lo = 10000 + (n % 22) * width
    return f"{lo}-{lo + width}"


# Set at import, before any fixture starts a testbed; child processes (albprobe run, Locust,
# the testbed's own helpers) inherit it.
# A worker inherits the controller's environment, so its own band overrides it.
if os.environ.get("PYTEST_XDIST_WORKER") or "ALBPROBE_PORT_BAND" not in os.environ:
    os.environ["ALBPROBE_PORT_BAND"] = _port_band()


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


# Fixtures that start a real testbed, a moto server or a browser: a test that uses one (directly
# or through another fixture) gets the matching marker, which `make test-fast` deselects.
_NEEDS = {
    "testbed": {"make_testbed", "cors_testbed", "cli"},
    "moto": {"moto_url"},
}
# Areas whose tests start the real stack themselves (a testbed in the test body, `albprobe run`
# or `demo` as a child process).
_STACK_DIRS = ("tests/load/", "tests/e2e/", "tests/testbed/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _NEEDS.items():
            if names & fixtures:
                item.add_marker(marker)
        rel = item.nodeid.replace("\\", "/")
        if rel.startswith(_STACK_DIRS):
            item.add_marker("testbed")
    # The longest tests first: with work stealing, a long test that starts last is the tail.
    rank = {"browser": 0, "slow": 1, "testbed": 2, "moto": 3}

    def own(item: pytest.Item) -> int:
        return min((rank[m.name] for m in item.iter_markers() if m.name in rank), default=9)

    # Ranked by module, so a module's tests stay together and its module-scoped testbed or
    # browser starts once per worker.
    by_module: dict[str, int] = {}
    for item in items:
        mod = item.nodeid.split("::")[0]
        by_module[mod] = min(by_module.get(mod, 9), own(item))
    items.sort(key=lambda item: by_module[item.nodeid.split("::")[0]])
