"""Record the load tests' durations from a JUnit report, for the heavy groups in tests/conftest.py.

    .venv/bin/python -m pytest -n 7 --dist loadgroup --junitxml=/tmp/junit.xml
    .venv/bin/python tests/durations.py /tmp/junit.xml

Every test of a heavy group is kept (xdist's loadgroup names them ``…@heavy-N``), however short:
a load test missing from the file counts as 30 s, as a new one does.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "durations.json"


def nodeid(classname: str, name: str) -> str:
    """JUnit's dotted classname back to a pytest node id (module path, then classes)."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = Path(*parts[:cut]).with_suffix(".py")
        if (HERE.parent / path).exists():
            return "::".join([path.as_posix(), *parts[cut:], name])
    return f"{classname}::{name}"


def main(report: str) -> None:
    # xdist's loadgroup suffix (@heavy-N) marks the grouped tests and is not part of the id
    times: dict[str, float] = {}
    for case in ET.parse(report).iter("testcase"):
        name, _, group = case.get("name", "").partition("@")
        if group.startswith("heavy-"):
            times[nodeid(case.get("classname", ""), name)] = round(float(case.get("time") or 0), 2)
    OUT.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")
    print(f"{OUT}: {len(times)} load tests")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tests/durations.py JUNIT.xml")
    main(sys.argv[1])
