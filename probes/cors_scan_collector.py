"""The CORS misconfiguration scan as a run collector (core.collector): before the load, on one GET
endpoint (a dozen crafted-origin requests, not load). Findings go to run.json, where the analyzer
counts an admitted disallowed origin against the CORS setup. Scan trouble is recorded, never fatal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.collector import Collector, CollectorResult, RunContext
from probes.cors_scan import scan


class CorsScanCollector(Collector):
    name = "cors-scan"

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.record: dict[str, Any] = {}

    def start(self, run: RunContext) -> None:
        cfg = run.config
        ep = next((e for e in cfg.endpoints if e.method == "GET"), cfg.endpoints[0])
        url = run.url.rstrip("/") + ep.path
        try:
            report = scan(url, cfg.browser.origin, timeout=self.timeout)
        except Exception as exc:
            self.record = {"cors_scan": {"url": url, "error": f"{type(exc).__name__}: {exc}"[:300]}}
            return
        self.record = {
            "security_findings": [dataclasses.asdict(f) for f in report.findings],
            "cors_scan": {
                "url": url,
                "worst": report.worst,
                "findings": len(report.findings),
                "inconclusive": list(report.inconclusive),
            },
        }
        if report.findings:
            run.log(
                f"CORS scan: {len(report.findings)} finding(s), worst {report.worst} (see run.json)"
            )

    def result(self) -> CollectorResult:
        return CollectorResult(self.name, record=self.record)
