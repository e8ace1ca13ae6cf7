"""probes/loadgen/launch.py: the Locust process albprobe starts reads the installed packages'
entry points once, and answers every query as importlib.metadata would."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_entry_points_read_once_answer_as_before():
    # in a child process: the patch is for the process's life
    code = """
import importlib.metadata as md, json
groups = ["console_scripts", "gevent.plugins.monkey.will_patch_all", "pytest11", "no.such.group"]
before = {g: sorted(e.name for e in md.entry_points(group=g)) for g in groups}
named = sorted(e.value for e in md.entry_points(group="console_scripts", name="locust"))
everything = sorted(map(str, md.entry_points()))  # 3.11: the groups
from probes.loadgen.launch import read_entry_points_once
read_entry_points_once()
after = {g: sorted(e.name for e in md.entry_points(group=g)) for g in groups}
print(json.dumps([before == after, named == sorted(e.value for e in md.entry_points(
    group="console_scripts", name="locust")), everything == sorted(map(str, md.entry_points())),
    before["console_scripts"]]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    import json

    same_groups, same_named, same_all, scripts = json.loads(out)
    assert same_groups and same_named and same_all
    assert {"locust", "albprobe"} <= set(scripts)  # the query was not trivially empty


def test_the_launcher_is_locust():
    r = subprocess.run(
        [sys.executable, "-m", "probes.loadgen.launch", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("locust ") and importlib.metadata.version("locust") in r.stdout
