"""JUnit XML for CI (`--junit FILE` on compare, run and analyze): one test case per gate, so
GitHub Actions, GitLab and Jenkins show each gate as a passed or failed test."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Case:
    name: str
    passed: bool
    message: str  # one line: what was measured against what
    detail: str = ""  # longer text (the reasons, the verdict), shown as the failure body / output


def write(path: str | Path, suite: str, cases: list[Case], *, seconds: float = 0.0) -> Path:
    """Write ``cases`` as one <testsuite> named ``suite`` in a <testsuites> document."""
    failures = sum(not c.passed for c in cases)
    root = ET.Element(
        "testsuites",
        name="albprobe",
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        time=f"{seconds:.3f}",
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{seconds:.3f}",
        timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname(),
    )
    for c in cases:
        tc = ET.SubElement(ts, "testcase", name=c.name, classname=suite, time="0")
        if not c.passed:
            f = ET.SubElement(tc, "failure", message=c.message, type="GateBreached")
            f.text = c.detail or c.message
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = c.detail or c.message
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(p, encoding="utf-8", xml_declaration=True)
    return p
