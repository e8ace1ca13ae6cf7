"""Which collectors (core.collector) a run gets: a registry of factories keyed by the run's setup.

Each factory looks at the setup (the target kind: the testbed or a URL; [aws]; the opt-ins such
as --ssm-logs) and returns the collectors it adds, often none. The runner asks collectors_for()
and never names a collector, so a new one is one register() call: here for the built-in ones, or
from a plugin or a test. Collectors start in registration order and stop in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.collector import Collector
from core.config import Config
from core.errors import ConfigError

if TYPE_CHECKING:
    from testbed import Testbed


@dataclass
class RunSetup:
    """What the factories key on. ``testbed``: the running testbed when it is the target."""

    config: Config
    testbed: Testbed | None = None
    opt_ins: frozenset[str] = frozenset()
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """One object per run for collectors of several factories (the resolved ALB, say)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]


Factory = Callable[[RunSetup], Iterable[Collector]]


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: Factory
    opt_in: bool


_REGISTRY: list[_Entry] = []


def register(name: str, factory: Factory, *, opt_in: bool = False) -> None:
    """Add a factory. ``opt_in``: only when the run asks for ``name`` (RunOptions.collect)."""
    if any(e.name == name for e in _REGISTRY):
        raise ValueError(f"collector factory {name!r} is already registered")
    _REGISTRY.append(_Entry(name, factory, opt_in))


def unregister(name: str) -> None:
    _REGISTRY[:] = [e for e in _REGISTRY if e.name != name]


def registered() -> list[str]:
    return [e.name for e in _REGISTRY]


def opt_in_names() -> list[str]:
    return [e.name for e in _REGISTRY if e.opt_in]


def check_opt_ins(names: frozenset[str]) -> None:
    unknown = names - set(opt_in_names())
    if unknown:
        raise ConfigError(
            f"unknown opt-in collector(s): {', '.join(sorted(unknown))}",
            hint=f"one of: {', '.join(opt_in_names())}",
        )


def collectors_for(setup: RunSetup) -> list[Collector]:
    check_opt_ins(setup.opt_ins)
    out: list[Collector] = []
    for e in _REGISTRY:
        if not e.opt_in or e.name in setup.opt_ins:
            out.extend(e.factory(setup))
    return out


# ---- the built-in collectors ------------------------------------------------------------------


def _haproxy_health(setup: RunSetup) -> list[Collector]:
    tb = setup.testbed
    if tb is None:
        return []
    from probes.health_poller import HaproxyHealthCollector

    return [HaproxyHealthCollector(tb.target_stats, interval=0.5)]


def _alb(setup: RunSetup):
    from probes.aws.run_collectors import AlbResources

    return setup.shared("alb", lambda: AlbResources(setup.config))


def _alb_health(setup: RunSetup) -> list[Collector]:
    if setup.testbed is not None or not _alb(setup).named:
        return []
    from probes.aws.run_collectors import AlbTargetHealthCollector

    return [AlbTargetHealthCollector(_alb(setup))]


def _cors_scan(setup: RunSetup) -> list[Collector]:
    from probes.cors_scan_collector import CorsScanCollector

    return [CorsScanCollector()]


def _url_only(make: Callable[[Any], Collector]) -> Factory:
    """An AWS collector for runs against a URL (the testbed has no ALB)."""

    def factory(setup: RunSetup) -> list[Collector]:
        return [] if setup.testbed is not None else [make(_alb(setup))]

    return factory


def _cloudwatch(alb: Any) -> Collector:
    from probes.aws.run_collectors import CloudWatchCollector

    return CloudWatchCollector(alb)


def _access_logs(alb: Any) -> Collector:
    from probes.aws.run_collectors import AccessLogsCollector

    return AccessLogsCollector(alb)


def _ssm_logs(alb: Any) -> Collector:
    from probes.aws.run_collectors import SsmLogsCollector

    return SsmLogsCollector(alb)


register("haproxy-health", _haproxy_health)
register("alb-health", _alb_health)
register("cors-scan", _cors_scan)
register("cloudwatch", _url_only(_cloudwatch))
register("alb-access-logs", _url_only(_access_logs), opt_in=True)
register("ssm-logs", _url_only(_ssm_logs), opt_in=True)
