"""albprobe.toml: the schema as dataclasses, and a loader whose errors name the key and the fix.

With no config file (and no ./albprobe.toml) every value defaults to the local testbed. The
schema, key by key with defaults, units and validation rules, is docs/config.md; a complete
commented example for a real API behind an ALB is albprobe.example.toml at the repository root.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.errors import ConfigError

DEFAULT_ORIGIN = "https://hakwonplus.com"
TESTBED = "testbed"
_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+(?:\.\d+)?)ms)?\s*$"
)
_SECONDS = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# An ALB health-check matcher: 200, 200-299, 200,302 (HTTP codes 100-599).
_MATCHER = re.compile(r"^\s*[1-5]\d\d(?:-[1-5]\d\d)?(?:\s*,\s*[1-5]\d\d(?:-[1-5]\d\d)?)*\s*$")


def parse_duration(value: str | int | float, *, key: str) -> float:
    """'90s', '2m', '1h30m', '250ms' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like '30s' or '2m', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"{key}: a duration must be a finite number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{key}: a duration cannot be negative ({value})")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a duration like '30s' or '2m', got {value!r}")
    if _SECONDS.match(value):  # "90" (e.g. from the command line) means seconds
        return float(value)
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        raise ConfigError(
            f"{key}: cannot read duration {value!r}",
            hint="write e.g. '30s', '2m', '1h30m' or '250ms'",
        )
    h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


@dataclass(frozen=True)
class Endpoint:
    """One API call a browser makes: what the load user and `albprobe cors` send."""

    name: str
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    weight: int = 1


CORS_MODES = ("chrome", "firefox", "webkit", "spec")  # probes.cors.evaluate.MODES


@dataclass(frozen=True)
class Browser:
    origin: str = DEFAULT_ORIGIN
    credentials: bool = True
    # whose CORS verdict and console words: "chrome" (today's Chromium), "firefox", "webkit"
    # (Safari) or "spec" (the Fetch standard); `albprobe cors --browser` overrides it
    cors_mode: str = "chrome"
    force_preflight: bool = False
    # Secrets come from the environment only and are never written to a run directory.
    auth_header_env: str = "ALBPROBE_AUTHORIZATION"
    cookie_env: str = "ALBPROBE_COOKIE"
    # PEM file of the CAs the browser trusts for https:// targets (None = the system's store).
    # TLS is always verified; the testbed's own CA is handed over this way.
    ca_bundle: str | None = None


@dataclass(frozen=True)
class Safety:
    allowed_hosts: tuple[str, ...] = ()
    max_users: int = 500
    max_rps: float = 2000.0
    abort_error_rate: float = 0.9  # abort when this share of requests fails ...
    abort_after: float = 15.0  # ... for this many consecutive seconds


@dataclass(frozen=True)
class Load:
    shape: str = "step"
    duration: float = 60.0
    users: int = 20
    spawn_rate: float = 10.0
    think_time: float = 0.0  # pause between a user's calls (closed-model shapes)
    # step ramp
    step_users: int = 10
    step_every: float = 10.0
    # spike
    spike_users: int = 100
    spike_at: float = 20.0
    spike_for: float = 10.0
    # open model (arrival rate, requests/s of user iterations)
    rate: float = 20.0
    start_rate: float = 1.0
    end_rate: float = 50.0
    max_vus: int = 200
    # idle-gap (keep-alive race): gaps around the backend keep-alive
    gap: float = 1.0
    gap_jitter: float = 0.3
    workers: int = 0  # 0 = one process; N = a master and N Locust workers
    # distributed: each worker writes its own requests parts under this folder or s3://bucket/prefix
    # (core/worker_parts.py); empty = workers ship their rows to the master
    worker_parts: str = ""
    web_ui: bool = False


@dataclass(frozen=True)
class Capacity:
    """The gunicorn capacity model of the target (taken from the testbed when it is the target)."""

    worker_class: str = "sync"
    workers: int = 2
    threads: int = 1
    timeout: float = 30.0
    keepalive: float = 2.0
    longest_request: float = 0.0  # the longest request the API is expected to serve; 0 = not known
    graceful_timeout: float = 5.0  # gunicorn --graceful-timeout: SIGTERM lets requests finish
    max_requests: int = 0  # gunicorn --max-requests (0 = workers are never recycled)
    max_requests_jitter: int = 0

    @property
    def slots(self) -> int:
        threads = self.threads if self.worker_class == "gthread" else 1
        return self.workers * max(threads, 1)


@dataclass(frozen=True)
class HealthCheck:
    path: str = "/health"
    port: int | None = None  # None = the traffic port
    matcher: str = "200"
    interval: float = 30.0
    timeout: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2


@dataclass(frozen=True)
class Proxy:
    idle_timeout: float = 60.0


LOAD_BALANCING = ("round_robin", "least_outstanding_requests")


@dataclass(frozen=True)
class TestbedGroup:
    """[testbed]: the local target group (used when the target is the testbed)."""

    __test__ = False
    targets: int = 1
    load_balancing: str = "round_robin"  # the target group's load_balancing.algorithm.type
    deregistration_delay: float = 300.0  # the ALB's default


@dataclass(frozen=True)
class Aws:
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None  # for moto / LocalStack in tests
    load_balancer: str | None = None
    target_group: str | None = None
    port: int = 8000
    poll_interval: float = 10.0
    health_check: HealthCheck = field(default_factory=HealthCheck)
    scheme: str = "internet-facing"  # what `albprobe check` expects of the ALB
    max_attempts: int = 5  # boto3 adaptive-retry attempts per call
    container: str = "academy-api"  # the API's Docker container (SSM log fetch, hints)


@dataclass(frozen=True)
class Fingerprint:
    """A user-supplied response fingerprint for attribution (see docs/attribution.md)."""

    name: str
    source: str  # proxy | server | app
    header: str | None = None
    header_pattern: str | None = None
    body_pattern: str | None = None
    status: tuple[int, ...] = ()


@dataclass(frozen=True)
class Replay:
    """`albprobe replay`: what an ALB log does not carry."""

    # more query-parameter names whose values are replaced (token, key, ... are always)
    secret_params: tuple[str, ...] = ()
    # path -> body template of a write (sent only with --allow-writes)
    bodies: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    target: str = TESTBED  # "testbed" or a base URL
    endpoints: tuple[Endpoint, ...] = ()
    browser: Browser = field(default_factory=Browser)
    safety: Safety = field(default_factory=Safety)
    load: Load = field(default_factory=Load)
    capacity: Capacity = field(default_factory=Capacity)
    proxy: Proxy = field(default_factory=Proxy)
    testbed: TestbedGroup = field(default_factory=TestbedGroup)
    aws: Aws = field(default_factory=Aws)
    fingerprints: tuple[Fingerprint, ...] = ()
    replay: Replay = field(default_factory=Replay)
    source_path: str | None = None

    @property
    def is_testbed(self) -> bool:
        return self.target == TESTBED


DEFAULT_ENDPOINTS = (
    Endpoint(name="fast", path="/api/fast", method="GET", weight=6),
    Endpoint(
        name="write",
        path="/api/items",
        method="POST",
        headers={"Content-Type": "application/json", "X-Client": "albprobe"},
        body='{"title": "probe"}',
        weight=2,
    ),
    Endpoint(name="slow", path="/api/slow?ms=200", method="GET", weight=1),
)


# ---------------------------------------------------------------------------------------------
# Loading


def _check_keys(section: str, raw: dict[str, Any], cls: type) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{section}: unknown key {unknown[0]!r}",
            hint=f"known keys: {', '.join(sorted(known - {'source_path'}))}",
        )


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _typed(section: str, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and kind in (int, float):
        raise ConfigError(f"{section}.{key}: expected {_KIND_NAMES[kind]}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(
            f"{section}.{key}: expected {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}"
        )
    if kind is float and not math.isfinite(value):  # TOML allows inf and nan
        raise ConfigError(f"{section}.{key}: must be a finite number, got {value!r}")
    return value


def _positive(section: str, key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(
            f"{section}.{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value}"
        )


_DURATION_KEYS = {
    "duration",
    "step_every",
    "spike_at",
    "spike_for",
    "gap",
    "gap_jitter",
    "abort_after",
    "timeout",
    "keepalive",
    "idle_timeout",
    "poll_interval",
    "interval",
    "think_time",
    "graceful_timeout",
    "longest_request",
    "deregistration_delay",
}


def _build(section: str, cls: type, raw: Any) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table, got {type(raw).__name__}")
    _check_keys(section, raw, cls)
    values: dict[str, Any] = {}
    defaults = cls()
    for f in fields(cls):
        if f.name not in raw:
            continue
        v = raw[f.name]
        default = getattr(defaults, f.name)
        key = f"{section}.{f.name}"
        if f.name in _DURATION_KEYS and isinstance(default, float):
            v = parse_duration(v, key=key)
        elif isinstance(default, bool):
            v = _typed(section, f.name, v, bool)
        elif isinstance(default, int) and not isinstance(default, bool):
            v = _typed(section, f.name, v, int)
        elif isinstance(default, float):
            v = _typed(section, f.name, v, float)
        elif isinstance(default, tuple):
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"{key}: expected a list of strings, got {v!r}")
            v = tuple(v)
        elif isinstance(default, HealthCheck):
            v = _build(key, HealthCheck, v)
        elif cls is HealthCheck and f.name == "port":
            v = _health_check_port(key, v)
        elif isinstance(default, str) or default is None:
            v = _typed(section, f.name, v, str)
        values[f.name] = v
    return cls(**values)


def _health_check_port(key: str, v: Any) -> int | None:
    """A TCP port, or "traffic-port" (the ALB's own word) meaning the port the targets serve on."""
    if v == "traffic-port":
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536:
        raise ConfigError(
            f'{key}: must be a TCP port (1-65535) or "traffic-port", got {v!r}',
            hint="leave it out to expect the traffic port ([aws] port)",
        )
    return v


def _endpoint(i: int, raw: Any) -> Endpoint:
    where = f"endpoints[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each [[endpoints]] entry must be a table")
    _check_keys(where, raw, Endpoint)
    for req in ("path",):
        if req not in raw:
            raise ConfigError(f"{where}: missing {req!r}", hint='e.g. path = "/api/me"')
    path = _typed(where, "path", raw["path"], str)
    if not path.startswith("/"):
        raise ConfigError(f"{where}.path: must start with '/', got {path!r}")
    method = _typed(where, "method", raw.get("method", "GET"), str).upper()
    if method not in _METHODS:
        raise ConfigError(
            f"{where}.method: unsupported method {method!r}",
            hint=f"one of {', '.join(sorted(_METHODS))}",
        )
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(f"{where}.headers: expected a table of string values")
    for k, v in headers.items():
        if not k.strip() or any(c in k + v for c in "\r\n") or ":" in k:
            raise ConfigError(
                f"{where}.headers: {k!r} is not a valid header line",
                hint="one header per key, no ':' in the name, no line breaks",
            )
    for secret in ("authorization", "cookie"):
        if any(k.lower() == secret for k in headers):
            raise ConfigError(
                f"{where}.headers: {secret.title()} must not be written in the config",
                hint="put it in the environment (browser.auth_header_env / browser.cookie_env)",
            )
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        raise ConfigError(f"{where}.body: expected a string (JSON text), got {type(body).__name__}")
    weight = _typed(where, "weight", raw.get("weight", 1), int)
    _positive(where, "weight", weight)
    name = _typed(where, "name", raw.get("name", f"{method} {path}"), str)
    if not name.strip():
        raise ConfigError(f"{where}.name: must not be empty")
    return Endpoint(
        name=name, path=path, method=method, headers=dict(headers), body=body, weight=weight
    )


def _fingerprint(i: int, raw: Any) -> Fingerprint:
    where = f"fingerprints[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each [[fingerprints]] entry must be a table")
    _check_keys(where, raw, Fingerprint)
    if "name" not in raw or "source" not in raw:
        raise ConfigError(f"{where}: needs 'name' and 'source'")
    if not isinstance(raw["name"], str) or not raw["name"].strip():
        raise ConfigError(f"{where}.name: expected a non-empty string, got {raw['name']!r}")
    if "header" in raw:
        _typed(where, "header", raw["header"], str)
    source = raw["source"]
    if source not in ("proxy", "server", "app"):
        raise ConfigError(f"{where}.source: must be proxy, server or app, got {source!r}")
    for key in ("header_pattern", "body_pattern"):
        if key in raw:
            try:
                re.compile(raw[key])
            except (re.error, TypeError) as exc:
                raise ConfigError(
                    f"{where}.{key}: not a valid regular expression ({exc})"
                ) from None
    if not any(k in raw for k in ("header", "body_pattern")):
        raise ConfigError(
            f"{where}: give 'header' (with optional 'header_pattern') or 'body_pattern'"
        )
    status = raw.get("status", [])
    if not isinstance(status, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in status
    ):
        raise ConfigError(
            f"{where}.status: expected a list of HTTP status codes (100-599), got {status!r}"
        )
    return Fingerprint(
        name=str(raw["name"]),
        source=source,
        header=raw.get("header"),
        header_pattern=raw.get("header_pattern"),
        body_pattern=raw.get("body_pattern"),
        status=tuple(status),
    )


def validate_target(target: str) -> str:
    """'testbed' or an absolute http(s) base URL (a path prefix is kept; endpoint paths are
    appended to it). No query, fragment or user:password (that would be recorded in run.json)."""
    if target == TESTBED:
        return target
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"target: {target!r} is not 'testbed' or an http(s) URL",
            hint='e.g. target = "https://api.hakwonplus.com"',
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "target: the URL must not carry a user or password",
            hint="credentials come from the environment (browser.auth_header_env / cookie_env)",
        )
    if parts.query or parts.fragment or target.endswith(("?", "#")):
        raise ConfigError(
            f"target: {target!r} must be a base URL without '?' or '#'",
            hint="put query strings in the [[endpoints]] paths",
        )
    return target.rstrip("/")


def validate_origin(origin: str, *, key: str = "browser.origin") -> str:
    """scheme://host[:port] (a trailing '/' is dropped) or the opaque origin "null"."""
    if origin == "null":
        return origin
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ConfigError(
            f"{key}: {origin!r} is not an origin",
            hint="write scheme://host[:port], e.g. https://hakwonplus.com",
        )
    return origin.rstrip("/")


def _ca_bundle(path: str | None, source_path: str | None) -> str | None:
    """An existing PEM file, as an absolute path (relative ones are read from the config's folder)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.is_absolute() and source_path:
        p = Path(source_path).parent / p
    if not p.is_file():
        raise ConfigError(
            f"browser.ca_bundle: no such file {path!r}",
            hint="give the PEM file of the CA that signed the API's certificate, or drop the key to use the system's CAs",
        )
    return str(p.resolve())


def _allowed_host(i: int, host: str) -> str:
    """A bare hostname, as check_target_allowed compares it with the target URL's hostname."""
    h = host.strip()
    if not h or "://" in h or "/" in h or any(c.isspace() for c in h) or h.count(":") == 1:
        raise ConfigError(
            f"safety.allowed_hosts[{i}]: {host!r} is not a bare hostname",
            hint='write only the host, without scheme, port or path: e.g. "api.hakwonplus.com"',
        )
    return h.lower()


def _check_load(load: Load) -> None:
    for key in ("duration", "users", "spawn_rate", "rate", "max_vus"):
        _positive("load", key, getattr(load, key))
    # Shape parameters are checked whatever the shape: `--shape` can switch to any of them.
    for key in ("step_users", "step_every", "spike_users", "spike_for"):
        _positive("load", key, getattr(load, key))
    for key in ("start_rate", "end_rate", "workers"):
        _positive("load", key, getattr(load, key), allow_zero=True)
    if load.start_rate == 0 and load.end_rate == 0:
        raise ConfigError(
            "load.start_rate / load.end_rate: both are 0, so ramping-rate would send nothing",
            hint="give end_rate (iterations/s at the end of the run) a value > 0",
        )


def config_from_dict(raw: dict[str, Any], *, source_path: str | None = None) -> Config:
    known = {
        "target",
        "endpoints",
        "browser",
        "safety",
        "load",
        "capacity",
        "proxy",
        "testbed",
        "aws",
        "fingerprints",
        "replay",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown top-level key {unknown[0]!r}", hint=f"known: {', '.join(sorted(known))}"
        )
    target = raw.get("target", TESTBED)
    if not isinstance(target, str):
        raise ConfigError(f"target: expected a string, got {target!r}")
    target = validate_target(target)
    eps = raw.get("endpoints")
    if eps is None:
        endpoints = DEFAULT_ENDPOINTS
    elif not isinstance(eps, list) or not eps:
        raise ConfigError("endpoints: expected one or more [[endpoints]] tables")
    else:
        endpoints = tuple(_endpoint(i, e) for i, e in enumerate(eps))
        names = [e.name for e in endpoints]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ConfigError(
                f"endpoints: name {dup!r} is used twice", hint="give each endpoint a unique name"
            )
    browser = _build("browser", Browser, raw.get("browser"))
    browser = replace(
        browser,
        origin=validate_origin(browser.origin),
        ca_bundle=_ca_bundle(browser.ca_bundle, source_path),
    )
    if browser.cors_mode not in CORS_MODES:
        raise ConfigError(
            f"browser.cors_mode: must be one of {', '.join(CORS_MODES)}, got {browser.cors_mode!r}"
        )
    safety = _build("safety", Safety, raw.get("safety"))
    safety = replace(
        safety,
        allowed_hosts=tuple(_allowed_host(i, h) for i, h in enumerate(safety.allowed_hosts)),
    )
    _positive("safety", "max_users", safety.max_users)
    _positive("safety", "max_rps", safety.max_rps)
    if not 0 < safety.abort_error_rate <= 1:
        raise ConfigError(
            f"safety.abort_error_rate: must be in (0, 1], got {safety.abort_error_rate}"
        )
    load = _build("load", Load, raw.get("load"))
    from core.shapes_catalog import SHAPES  # local: keeps config free of locust imports

    if load.shape not in SHAPES:
        raise ConfigError(
            f"load.shape: unknown shape {load.shape!r}", hint=f"one of {', '.join(SHAPES)}"
        )
    _check_load(load)
    capacity = _build("capacity", Capacity, raw.get("capacity"))
    if capacity.worker_class not in ("sync", "gthread", "gevent", "eventlet", "tornado", "uvicorn"):
        raise ConfigError(
            f"capacity.worker_class: unknown gunicorn worker class {capacity.worker_class!r}"
        )
    _positive("capacity", "workers", capacity.workers)
    _positive("capacity", "threads", capacity.threads)
    _positive("capacity", "graceful_timeout", capacity.graceful_timeout, allow_zero=True)
    _positive("capacity", "longest_request", capacity.longest_request, allow_zero=True)
    _positive("capacity", "max_requests", capacity.max_requests, allow_zero=True)
    _positive("capacity", "max_requests_jitter", capacity.max_requests_jitter, allow_zero=True)
    testbed = _build("testbed", TestbedGroup, raw.get("testbed"))
    if not 1 <= testbed.targets <= 50:
        raise ConfigError(
            f"testbed.targets: must be between 1 and 50, got {testbed.targets}",
            hint="the testbed runs each target as its own gunicorn; 2 or 3 show the patterns",
        )
    if testbed.load_balancing not in LOAD_BALANCING:
        raise ConfigError(
            f"testbed.load_balancing: must be one of {', '.join(LOAD_BALANCING)}, "
            f"got {testbed.load_balancing!r}"
        )
    proxy = _build("proxy", Proxy, raw.get("proxy"))
    _positive("proxy", "idle_timeout", proxy.idle_timeout)
    aws = _build("aws", Aws, raw.get("aws"))
    if aws.scheme not in ("internet-facing", "internal"):
        raise ConfigError(
            f"aws.scheme: must be 'internet-facing' or 'internal', got {aws.scheme!r}"
        )
    _positive("aws", "max_attempts", aws.max_attempts)
    _positive("aws", "poll_interval", aws.poll_interval)
    if not 0 < aws.port < 65536:
        raise ConfigError(f"aws.port: must be a TCP port (1-65535), got {aws.port}")
    hc = aws.health_check
    if not hc.path.startswith("/"):
        raise ConfigError(f"aws.health_check.path: must start with '/', got {hc.path!r}")
    if not _MATCHER.match(hc.matcher):
        raise ConfigError(
            f"aws.health_check.matcher: cannot read {hc.matcher!r}",
            hint='HTTP codes as the ALB writes them: "200", "200-299" or "200,302"',
        )
    for key in ("interval", "timeout", "healthy_threshold", "unhealthy_threshold"):
        _positive("aws.health_check", key, getattr(hc, key))
    fps = raw.get("fingerprints", [])
    if not isinstance(fps, list):
        raise ConfigError("fingerprints: expected [[fingerprints]] tables")
    fingerprints = tuple(_fingerprint(i, f) for i, f in enumerate(fps))
    replay = _replay(raw.get("replay"))
    return Config(
        target=target,
        endpoints=endpoints,
        browser=browser,
        safety=safety,
        load=load,
        capacity=capacity,
        proxy=proxy,
        testbed=testbed,
        aws=aws,
        fingerprints=fingerprints,
        replay=replay,
        source_path=source_path,
    )


def _replay(raw: Any) -> Replay:
    """[replay]: secret_params = [...] and a [replay.bodies] table of path = body."""
    raw = dict(raw or {})
    bodies = raw.pop("bodies", {})
    base = _build("replay", Replay, raw)
    if not isinstance(bodies, dict) or not all(
        isinstance(k, str) and k.startswith("/") and isinstance(v, str) for k, v in bodies.items()
    ):
        raise ConfigError(
            'replay.bodies: expected a table of path = body, e.g. "/api/items" = \'{"title": "x"}\'',
            hint="paths start with '/', bodies are strings",
        )
    return replace(base, bodies=dict(bodies))


def load_config(path: str | Path | None) -> Config:
    """Read albprobe.toml; None (and no ./albprobe.toml) means all testbed defaults."""
    if path is None:
        default = Path("albprobe.toml")
        if not default.exists():
            return config_from_dict({})
        path = default
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config {str(p)!r} not found",
            hint="check the path, or omit --config to use testbed defaults",
        ) from None
    except OSError as exc:
        raise ConfigError(f"config {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # PowerShell 5's `>` and Out-File write UTF-16.
        raise ConfigError(
            f"config {str(p)!r} is UTF-16 text",
            hint="save it as UTF-8 (PowerShell: Set-Content -Encoding utf8)",
        )
    try:
        text = data.decode("utf-8-sig")  # tolerate a UTF-8 byte-order mark
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config {str(p)!r} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {str(p)!r} is not valid TOML: {exc}") from None
    try:
        return config_from_dict(raw, source_path=str(p))
    except ConfigError as exc:
        raise ConfigError(f"config {str(p)!r}: {exc.message}", hint=exc.hint) from None


# ---------------------------------------------------------------------------------------------
# Writing the effective config back (what `albprobe run` hands to Locust, and what the Locust
# master ships to remote workers): TOML that load_config reads to an equal Config.


def _plain(v: Any) -> Any:
    """Config data as TOML values: None dropped (TOML has no null), tuples as arrays."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def config_to_toml(cfg: Config) -> str:
    """The config as TOML text. Secrets are never in it: it holds only the names of the
    environment variables with Authorization / Cookie values."""
    import dataclasses

    import tomli_w

    data = dataclasses.asdict(cfg)
    data.pop("source_path", None)
    # An empty status list means "any status"; the reader takes a missing key the same way.
    data["fingerprints"] = [{k: v for k, v in fp.items() if v != ()} for fp in data["fingerprints"]]
    return tomli_w.dumps(_plain(data))


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_refusal(url: str, cfg: Config) -> str | None:
    """Why load must not be sent to ``url`` (None = allowed): only hosts on [safety]
    allowed_hosts, plus loopback addresses, which can reach nothing but this machine."""
    host = (urlsplit(url).hostname or "").lower()
    if _is_loopback(host) or host in {h.lower() for h in cfg.safety.allowed_hosts}:
        return None
    where = cfg.source_path or "albprobe.toml"
    return f"target host {host!r} is not on the load allow-list (add it to [safety] allowed_hosts in {where} to allow load against it)"
