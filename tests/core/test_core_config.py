"""albprobe.toml: the documented example loads, no config means the testbed, and every bad value is
a ConfigError naming the key (one line on the CLI, exit 2, no traceback)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import (
    DEFAULT_ENDPOINTS,
    Config,
    HealthCheck,
    config_from_dict,
    load_config,
    parse_duration,
)
from core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "albprobe.example.toml"


def test_example_file_loads_with_the_documented_values():
    cfg = load_config(EXAMPLE)
    assert cfg.target == "https://api.hakwonplus.com" and not cfg.is_testbed
    assert cfg.browser.origin == "https://hakwonplus.com"
    assert cfg.browser.auth_header_env == "ALBPROBE_AUTHORIZATION"
    assert cfg.safety.allowed_hosts == ("api.hakwonplus.com",)
    assert cfg.safety.abort_after == 15.0
    assert [e.name for e in cfg.endpoints] == ["me", "items-list", "items-create"]
    post = cfg.endpoints[-1]
    assert (post.method, post.path, post.headers["Content-Type"]) == (
        "POST",
        "/api/items",
        "application/json",
    )
    assert not any(
        k.lower() in ("authorization", "cookie") for e in cfg.endpoints for k in e.headers
    )
    assert (cfg.load.shape, cfg.load.duration, cfg.load.step_every) == ("step", 300.0, 30.0)
    assert cfg.load.think_time == 0.5 and cfg.load.gap_jitter == 0.5
    assert (cfg.capacity.worker_class, cfg.capacity.slots) == ("gthread", 12)
    assert cfg.proxy.idle_timeout == 60.0
    aws = cfg.aws
    assert (aws.region, aws.load_balancer, aws.target_group, aws.port) == (
        "ap-northeast-2",
        "academy-alb",
        "academy-api-tg",
        8000,
    )
    assert aws.health_check.port is None  # "traffic-port"
    assert aws.health_check.path == "/health" and aws.health_check.interval == 30.0
    assert [(f.name, f.source, f.status) for f in cfg.fingerprints] == [
        ("cloudfront", "proxy", (502, 503, 504))
    ]
    assert cfg.source_path == str(EXAMPLE)


def test_example_documents_every_key_of_the_schema():
    """The example is complete: every key of every section appears in it (commented or not)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    cfg = Config()
    sections = {
        "browser": cfg.browser,
        "safety": cfg.safety,
        "load": cfg.load,
        "capacity": cfg.capacity,
        "proxy": cfg.proxy,
        "testbed": cfg.testbed,
        "aws": cfg.aws,
        "aws.health_check": cfg.aws.health_check,
    }
    for name, obj in sections.items():
        assert f"[{name}]" in text
        for f in dataclasses.fields(obj):
            if f.name == "health_check":  # a table, checked as [aws.health_check]
                continue
            assert re.search(rf"^#? ?{f.name} = ", text, re.M), f"{name}.{f.name} missing"


def test_every_config_key_is_documented():
    doc = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    cfg = Config()
    for obj in (
        cfg.browser,
        cfg.safety,
        cfg.load,
        cfg.capacity,
        cfg.proxy,
        cfg.testbed,
        cfg.aws,
        HealthCheck(),
        cfg.replay,
    ):
        for f in dataclasses.fields(obj):
            assert f"| `{f.name}` |" in doc, f"{type(obj).__name__}.{f.name} not in docs/config.md"


def test_no_config_means_the_testbed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./albprobe.toml here
    cfg = load_config(None)
    assert cfg.is_testbed and cfg.target == "testbed"
    assert cfg.endpoints == DEFAULT_ENDPOINTS
    assert cfg.browser.origin == "https://hakwonplus.com"
    assert cfg.safety.allowed_hosts == () and cfg.load.shape == "step"
    assert cfg.source_path is None
    # An empty file is the same as no file.
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert dataclasses.replace(load_config(empty), source_path=None) == cfg


def test_albprobe_toml_in_the_working_directory_is_picked_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "albprobe.toml").write_text('[load]\nshape = "spike"\nduration = "1h30m"\n')
    cfg = load_config(None)
    assert (cfg.load.shape, cfg.load.duration) == ("spike", 5400.0)
    assert cfg.source_path == "albprobe.toml"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("2m", 120), ("1h30m", 5400), ("250ms", 0.25), ("1.5m", 90), ("90", 90)],
)
def test_durations(text, seconds):
    assert parse_duration(text, key="k") == pytest.approx(seconds)


def test_values_are_normalised():
    cfg = _load_text(
        'target = "https://API.hakwonplus.com/"\n'
        '[browser]\norigin = "https://hakwonplus.com/"\n'
        '[safety]\nallowed_hosts = ["API.Hakwonplus.com"]\n'
        '[[endpoints]]\npath = "/api/me"\nmethod = "get"\n'
    )
    assert cfg.target == "https://API.hakwonplus.com"
    assert cfg.browser.origin == "https://hakwonplus.com"  # no trailing '/' in the Origin header
    assert cfg.safety.allowed_hosts == ("api.hakwonplus.com",)
    assert (cfg.endpoints[0].method, cfg.endpoints[0].name) == ("GET", "GET /api/me")


def test_utf8_bom_is_accepted(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + b"[load]\nusers = 7\n")
    assert load_config(p).load.users == 7


def _load_text(text: str, tmp_path: Path | None = None) -> Config:
    import tempfile

    d = Path(tempfile.mkdtemp()) if tmp_path is None else tmp_path
    p = d / "albprobe.toml"
    p.write_text(text, encoding="utf-8")
    return load_config(p)


# (id, TOML text, pattern the one-line message must contain: the key and what is wrong)
BAD = [
    ("unknown-top-key", 'targte = "testbed"\n', r"unknown top-level key 'targte'"),
    ("unknown-key", "[load]\nuser = 5\n", r"load: unknown key 'user' \(known keys: .*users"),
    ("bad-duration", '[load]\nduration = "5 minutes"\n', r"load\.duration: cannot read duration"),
    ("duration-type", "[load]\nduration = [1]\n", r"load\.duration: expected a duration"),
    ("negative-users", "[load]\nusers = -3\n", r"load\.users: must be > 0, got -3"),
    ("negative-duration", "[safety]\nabort_after = -1\n", r"safety\.abort_after: .*negative"),
    ("zero-step", '[load]\nstep_every = "0s"\n', r"load\.step_every: must be > 0"),
    ("nan", "[load]\nrate = nan\n", r"load\.rate: must be a finite number"),
    ("string-number", '[load]\nusers = "10"\n', r"load\.users: expected an integer"),
    ("bool-number", "[safety]\nmax_rps = true\n", r"safety\.max_rps: expected a number"),
    ("bad-origin", '[browser]\norigin = "hakwonplus.com"\n', r"browser\.origin: .* not an origin"),
    ("origin-path", '[browser]\norigin = "https://hakwonplus.com/app"\n', r"browser\.origin"),
    ("bad-target", 'target = "api.hakwonplus.com"\n', r"target: .* not 'testbed' or an http"),
    ("target-userinfo", 'target = "https://u:pw@api.x.com"\n', r"target: .*user or password"),
    ("bad-method", '[[endpoints]]\npath = "/a"\nmethod = "FETCH"\n', r"endpoints\[0\]\.method"),
    ("no-path", '[[endpoints]]\nname = "a"\n', r"endpoints\[0\]: missing 'path'"),
    ("relative-path", '[[endpoints]]\npath = "api/me"\n', r"endpoints\[0\]\.path: must start"),
    (
        "authorization-header",
        '[[endpoints]]\npath = "/a"\nheaders = { Authorization = "Bearer x" }\n',
        r"endpoints\[0\]\.headers: Authorization must not be written in the config",
    ),
    (
        "cookie-header",
        '[[endpoints]]\npath = "/a"\nheaders = { cookie = "s=1" }\n',
        r"endpoints\[0\]\.headers: Cookie must not be written",
    ),
    (
        "duplicate-endpoint",
        '[[endpoints]]\nname = "a"\npath = "/a"\n[[endpoints]]\nname = "a"\npath = "/b"\n',
        r"endpoints: name 'a' is used twice",
    ),
    ("zero-weight", '[[endpoints]]\npath = "/a"\nweight = 0\n', r"endpoints\[0\]\.weight: must"),
    ("empty-endpoints", "endpoints = []\n", r"endpoints: expected one or more"),
    (
        "bad-fingerprint-regex",
        '[[fingerprints]]\nname = "x"\nsource = "proxy"\nbody_pattern = "(unclosed"\n',
        r"fingerprints\[0\]\.body_pattern: not a valid regular expression",
    ),
    (
        "bad-fingerprint-source",
        '[[fingerprints]]\nname = "x"\nsource = "alb"\nheader = "X"\n',
        r"fingerprints\[0\]\.source: must be proxy, server or app",
    ),
    (
        "bad-fingerprint-status",
        '[[fingerprints]]\nname = "x"\nsource = "proxy"\nheader = "X"\nstatus = [5020]\n',
        r"fingerprints\[0\]\.status",
    ),
    ("unknown-shape", '[load]\nshape = "ramp"\n', r"load\.shape: unknown shape 'ramp' \(one of"),
    ("abort-rate-high", "[safety]\nabort_error_rate = 1.5\n", r"safety\.abort_error_rate: .*1\.5"),
    ("abort-rate-zero", "[safety]\nabort_error_rate = 0\n", r"safety\.abort_error_rate"),
    (
        "allowed-host-url",
        '[safety]\nallowed_hosts = ["https://api.hakwonplus.com"]\n',
        r"safety\.allowed_hosts\[0\]: .* not a bare hostname",
    ),
    ("allowed-hosts-type", '[safety]\nallowed_hosts = "api.x.com"\n', r"safety\.allowed_hosts"),
    ("non-table-section", "load = 5\n", r"\[load\] must be a table"),
    ("array-of-tables", "[[safety]]\nmax_users = 5\n", r"\[safety\] must be a table"),
    ("bad-cors-mode", '[browser]\ncors_mode = "lynx"\n', r"browser\.cors_mode"),
    ("bad-worker-class", '[capacity]\nworker_class = "thread"\n', r"capacity\.worker_class"),
    ("bad-port", "[aws]\nport = 70000\n", r"aws\.port: must be a TCP port"),
    ("bad-scheme", '[aws]\nscheme = "public"\n', r"aws\.scheme"),
    ("hc-port", '[aws.health_check]\nport = "8000"\n', r"aws\.health_check\.port"),
    ("hc-matcher", '[aws.health_check]\nmatcher = "OK"\n', r"aws\.health_check\.matcher"),
    ("hc-unknown", "[aws.health_check]\nhealthy = 3\n", r"aws\.health_check: unknown key"),
    (
        "ramp-nothing",
        "[load]\nstart_rate = 0\nend_rate = 0\n",
        r"load\.start_rate / load\.end_rate",
    ),
    ("invalid-toml", "[load\nusers = 5\n", r"is not valid TOML: .*line 1"),
]


@pytest.mark.parametrize(("text", "pattern"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_values_name_the_key(tmp_path, text, pattern):
    p = tmp_path / "albprobe.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    err = info.value
    assert err.exit_code == 2
    line = err.one_line()
    assert "\n" not in line
    assert line.startswith(f"config {str(p)!r}")  # names the file ...
    assert re.search(pattern, line), line  # ... and the key


def _error_line(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.one_line()


def test_missing_and_unreadable_files(tmp_path):
    line = _error_line(tmp_path / "nope.toml")
    assert re.fullmatch(r"config '.*nope\.toml' not found \(check the path.*\)", line), line
    assert "cannot be read" in _error_line(tmp_path)  # a directory
    utf16 = tmp_path / "ps.toml"
    utf16.write_bytes("[load]\nusers = 5\n".encode("utf-16"))  # PowerShell 5's `>`
    assert "is UTF-16 text (save it as UTF-8" in _error_line(utf16)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[browser]\norigin = "https://caf\xe9.example"\n')
    assert "is not UTF-8 text" in _error_line(latin)


def test_cli_overrides_use_the_same_rules():
    from albprobe.commands.run import apply_overrides

    cfg = apply_overrides(
        Config(), target=None, shape="spike", duration="2m", users=300, rate=None, workers=2
    )
    assert (cfg.load.shape, cfg.load.duration, cfg.load.users, cfg.load.workers) == (
        "spike",
        120.0,
        300,
        2,
    )
    assert cfg.load.max_vus == 300  # raised to the user count
    with pytest.raises(ConfigError, match=r"--duration: cannot read duration"):
        apply_overrides(Config(), **_no_overrides(duration="2 minutes"))
    with pytest.raises(ConfigError, match=r"target: .*user or password"):
        apply_overrides(Config(), **_no_overrides(target="https://a:b@api.x.com"))


def _no_overrides(**kw):
    base = dict(target=None, shape=None, duration=None, users=None, rate=None, workers=None)
    return base | kw


def test_effective_config_round_trips(tmp_path):
    """`albprobe run` hands Locust the effective config as TOML and Locust re-validates it: the
    example and every demo scenario must survive that trip unchanged."""
    from albprobe.commands.demo import scenario_config
    from albprobe.demo_scenarios import SCENARIOS
    from albprobe.runner import _write_effective_config

    configs = [load_config(EXAMPLE)] + [scenario_config(sc) for sc in SCENARIOS.values()]
    for i, cfg in enumerate(configs):
        p = tmp_path / f"effective-{i}.toml"
        _write_effective_config(cfg, p)
        back = load_config(p)
        assert dataclasses.replace(back, source_path=None) == dataclasses.replace(
            cfg, source_path=None
        )


CLI_BAD = [
    ('[load]\nduration = "soon"\n', "load.duration: cannot read duration 'soon'"),
    ('[[endpoints]]\npath = "/a"\nheaders = { Authorization = "x" }\n', "Authorization must not"),
    ("[load\n", "is not valid TOML"),
    (None, "not found"),  # a missing file
]


@pytest.mark.parametrize(("text", "needle"), CLI_BAD)
def test_cli_prints_one_line_and_exits_2(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "albprobe",
            "run",
            "--config",
            str(path),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("albprobe: error: config ") and needle in lines[0], lines[0]
    assert str(path) in lines[0]
    assert not (tmp_path / "runs").exists()  # stopped before anything was created


NON_ASCII = "학원 plus 🚀 é"  # Hangul, an emoji outside the BMP, a Latin-1 letter


def _string_paths():
    """(section, key) of every str-typed config field, found from the dataclasses themselves so
    a new field is covered without touching this test."""
    from core import config as c

    sections = {
        "browser": c.Browser,
        "safety": c.Safety,
        "load": c.Load,
        "capacity": c.Capacity,
        "proxy": c.Proxy,
        "aws": c.Aws,
        "aws.health_check": c.HealthCheck,
        "endpoints": c.Endpoint,
        "fingerprints": c.Fingerprint,
    }
    for section, cls in sections.items():
        for f in dataclasses.fields(cls):
            if "str" in str(f.type) and "tuple" not in str(f.type) and "dict" not in str(f.type):
                yield section, f.name


def _with(section: str, key: str, value: str) -> dict:
    raw: dict = {
        "endpoints": [{"name": "e", "path": "/api/e"}],
        "fingerprints": [{"name": "f", "source": "proxy", "header": "Server"}],
    }
    if section in ("endpoints", "fingerprints"):
        raw[section][0][key] = value
    elif section == "aws.health_check":
        raw["aws"] = {"health_check": {key: value}}
    else:
        raw[section] = {key: value}
    return raw


def test_every_string_field_round_trips_non_ascii(tmp_path):
    """The effective config handed to Locust is written with tomli-w: a value outside the BMP
    (an emoji in a body) must come back equal, not as a surrogate escape TOML rejects."""
    from albprobe.runner import _write_effective_config

    accepted = 0
    for section, key in _string_paths():
        for value in (NON_ASCII, f"/api/{NON_ASCII}", f'{{"t": "{NON_ASCII}"}}'):
            try:
                cfg = config_from_dict(_with(section, key, value))
            except ConfigError:
                continue  # validation refuses this value here (e.g. a region); nothing to write
            p = tmp_path / f"{section}-{key}.toml"
            _write_effective_config(cfg, p)
            back = load_config(p)
            assert dataclasses.replace(back, source_path=None) == dataclasses.replace(
                cfg, source_path=None
            ), (section, key, value)
            accepted += 1
    # At least the free-text fields take non-ASCII: endpoint name, path and body, the origin's
    # host (IDN), header/body patterns, profile, container ...
    assert accepted >= 8


def test_emoji_body_and_header_values_round_trip(tmp_path):
    from albprobe.runner import _write_effective_config

    cfg = config_from_dict(
        {
            "endpoints": [
                {
                    "name": "메모 🚀",
                    "path": "/api/items",
                    "method": "POST",
                    "headers": {"Content-Type": "application/json", "X-Note": "café"},
                    "body": '{"title": "🚀 수업"}',
                }
            ],
            "safety": {"allowed_hosts": ["api.hakwonplus.com"]},
        }
    )
    p = tmp_path / "effective.toml"
    _write_effective_config(cfg, p)
    assert "🚀" in p.read_text(encoding="utf-8")  # written as the character, not \ud83d escapes
    assert load_config(p).endpoints == cfg.endpoints
