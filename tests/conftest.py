"""Suite-wide rules: a skipped test in CI is a failure (CI installs every tool the suite needs, so
a skip there means a test silently stopped running)."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


# Load-generating tests (marked slow: Locust through HAProxy to gunicorn, tune, the demos) each
# keep a core busy. Run all at once on two cores, they would stretch each other past their
# health checks and timeouts. So `make test` (--dist loadgroup) deals them into HEAVY groups, each
# run in turn on one worker, balanced by their recorded durations (tests/durations.json);
# the other workers take the light tests one at a time meanwhile.
HEAVY = max(1, int(os.environ.get("ALBPROBE_TEST_HEAVY", "5")))
DURATIONS = Path(__file__).with_name("durations.json")
UNKNOWN_DURATION = 30.0  # a new slow test until `python tests/durations.py` records it


def heavy_groups(
    durations: dict[str, float], units: dict[str, list[str]], groups: int
) -> dict[str, int]:
    """Units of tests (one test, or a module whose tests share a module-scoped testbed), longest
    first, each to the group with the least work so far (LPT scheduling): node id -> group."""

    def cost(unit: str) -> float:
        return sum(durations.get(n, UNKNOWN_DURATION) for n in units[unit])

    load = [0.0] * groups
    out: dict[str, int] = {}
    for unit in sorted(units, key=lambda u: -cost(u)):
        g = min(range(groups), key=lambda k: load[k])
        out.update((n, g) for n in units[unit])
        load[g] += cost(unit)
    return out


def _unit(item: pytest.Item) -> str:
    """The tests of a module that share a module-scoped fixture go to one group: its setup
    (several testbed runs, a browser) is then made once."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    shared = any(d[-1].scope in ("module", "class", "package") for d in defs if d)
    return item.nodeid.split("::")[0] if shared else item.nodeid


@pytest.hookimpl(wrapper=True)  # marks set before any plugin's hook: xdist reads xdist_group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    _mark(items)
    return (yield)


def _mark(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _NEEDS.items():
            if names & fixtures:
                item.add_marker(marker)
        rel = item.nodeid.replace("\\", "/")
        if rel.startswith(_STACK_DIRS):
            item.add_marker("testbed")
    heavy = [item for item in items if item.get_closest_marker("slow") is not None]
    try:
        durations = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        durations = {}
    units: dict[str, list[str]] = {}
    for item in heavy:
        units.setdefault(_unit(item), []).append(item.nodeid)
    groups = heavy_groups(durations, units, HEAVY)
    for item in heavy:
        item.add_marker(pytest.mark.xdist_group(f"heavy-{groups[item.nodeid]}"))


# ALBPROBE_TEST_CPU=FILE: each test's CPU seconds (the test process and the children it reaped:
# testbeds, Locust, albprobe commands) appended to FILE as "seconds<TAB>node id<TAB>start<TAB>end
# <TAB>worker" (wall-clock epoch seconds), to see where the suite's CPU and time go. Long-lived
# fixtures are charged to the test that tears them down.
_CPU_LOG = os.environ.get("ALBPROBE_TEST_CPU")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if not _CPU_LOG:
        yield
        return
    import resource

    def cpu() -> float:
        s, c = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    import time

    before, start = cpu(), time.time()
    yield
    worker = os.environ.get("PYTEST_XDIST_WORKER", "-")
    with open(_CPU_LOG, "a") as f:
        f.write(f"{cpu() - before:.2f}\t{item.nodeid}\t{start:.1f}\t{time.time():.1f}\t{worker}\n")
