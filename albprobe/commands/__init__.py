"""Sub-commands of `albprobe`; each module exposes ``register(app)``."""

from __future__ import annotations

from albprobe.commands import (
    analyze,
    check,
    compare,
    cors,
    demo,
    explain,
    replay,
    run,
    testbed,
    tune,
)

COMMAND_MODULES = [testbed, cors, explain, check, run, replay, analyze, compare, demo, tune]
