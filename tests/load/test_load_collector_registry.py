"""The collector registry: a collector added by register() alone runs around the load (runner.py
untouched), and the built-in factories follow the target kind, [aws] and the opt-ins."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from albprobe import collectors as registry
from albprobe.collectors import RunSetup, collectors_for
from albprobe.runner import RunOptions, execute
from core.collector import Collector, CollectorResult, RunContext
from core.config import config_from_dict
from core.errors import ConfigError

RUNNER = Path(registry.__file__).with_name("runner.py")


class RequestCounter(Collector):
    """A test collector: notes the recorded requests when started and stopped, writes a file."""

    name = "request-counter"

    def __init__(self) -> None:
        self.at_start: int | None = None
        self.record: dict = {}
        self.files: list[str] = []

    def start(self, run: RunContext) -> None:
        self.at_start = sum(1 for _ in run.rundir.parts("requests"))
        self.url = run.url

    def stop(self, run: RunContext) -> None:
        parts = run.rundir.parts("requests")
        out = run.rundir.logs / "request-counter.txt"
        out.write_text(f"{len(parts)} parts\n")
        self.files = ["logs/request-counter.txt"]
        self.record = {
            "request_counter": {"parts_at_start": self.at_start, "parts_at_stop": len(parts)},
            "collectors": {"request_counter": {"url": self.url}},
        }

    def result(self) -> CollectorResult:
        return CollectorResult(self.name, self.files, self.record)


@pytest.fixture
def counter():
    made: list[RequestCounter] = []

    def factory(setup: RunSetup) -> list[Collector]:
        if setup.testbed is None:  # keyed by the setup: testbed runs only
            return []
        made.append(RequestCounter())
        return made[-1:]

    registry.register("request-counter", factory)
    yield made
    registry.unregister("request-counter")


def test_a_registered_collector_runs_around_the_load_without_touching_the_runner(counter, tmp_path):
    assert "request-counter" not in RUNNER.read_text() and "RequestCounter" not in (
        RUNNER.read_text()
    )
    cfg = config_from_dict({"load": {"think_time": 0.1}})
    cfg = dataclasses.replace(cfg, load=dataclasses.replace(cfg.load, users=2, duration=3.0))
    result = execute(RunOptions(config=cfg, shape="users", runs_root=tmp_path, run_id="reg"))
    assert result.status == "complete", result.status_reason
    assert len(counter) == 1
    meta = json.loads((result.rundir.path / "run.json").read_text())
    # started before the load (nothing recorded yet), stopped after it (requests recorded)
    assert meta["request_counter"]["parts_at_start"] == 0
    assert meta["request_counter"]["parts_at_stop"] >= 1
    assert (result.rundir.path / "logs" / "request-counter.txt").read_text().endswith("parts\n")
    # its entries merge with the built-in collectors' under the same key
    assert meta["collectors"]["request_counter"]["url"] == meta["target"]["url"]
    assert meta["collectors"]["health"]["kind"] == "haproxy"
    assert meta["collectors"]["health"]["samples"] >= 1


def _names(cs: list[Collector]) -> list[str]:
    return [c.name for c in cs]


def test_factories_follow_target_kind_aws_settings_and_opt_ins():
    url = config_from_dict({"target": "https://api.example.com", "safety": {}})
    named = config_from_dict(
        {"target": "https://api.example.com", "aws": {"load_balancer": "academy-alb"}}
    )
    assert _names(collectors_for(RunSetup(url))) == ["cors-scan", "cloudwatch"]
    assert _names(collectors_for(RunSetup(named))) == ["health", "cors-scan", "cloudwatch"]
    opted = RunSetup(named, opt_ins=frozenset({"ssm-logs", "alb-access-logs"}))
    assert _names(collectors_for(opted)) == [
        "health",
        "cors-scan",
        "cloudwatch",
        "access-logs",
        "ssm-logs",
    ]
    # the ALB collectors of one run share one resolution of [aws]
    alb = {id(c.alb) for c in collectors_for(opted) if hasattr(c, "alb")}
    assert len(alb) == 1
    assert RunOptions(config=named, shape="users", ssm_logs=True).opt_ins() == {"ssm-logs"}


def test_an_unknown_opt_in_is_a_one_line_config_error():
    cfg = config_from_dict({})
    with pytest.raises(ConfigError) as info:
        collectors_for(RunSetup(cfg, opt_ins=frozenset({"pcap"})))
    assert info.value.one_line() == (
        "unknown opt-in collector(s): pcap (one of: alb-access-logs, ssm-logs)"
    )


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("cors-scan", lambda setup: [])


def test_an_unknown_opt_in_is_refused_before_the_run_directory_exists(tmp_path):
    opts = RunOptions(
        config=config_from_dict({}),
        shape="users",
        runs_root=tmp_path,
        run_id="refused",
        collect=frozenset({"pcap"}),
    )
    with pytest.raises(ConfigError, match="unknown opt-in collector"):
        execute(opts)
    assert not (tmp_path / "refused").exists()
