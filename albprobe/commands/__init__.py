"""Sub-commands of `albprobe`; each module exposes ``register(app)``."""

from __future__ import annotations

from albprobe.commands import analyze, check, compare, cors, demo, explain, run, testbed, tune

COMMAND_MODULES = [testbed, cors, explain, check, run, analyze, compare, demo, tune]
