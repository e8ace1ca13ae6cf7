"""`albprobe origin-check`: the Django settings rules (django-cors-headers matching, Django's
CSRF_TRUSTED_ORIGINS scheme rule and validate_host), and its CLI error handling."""

from __future__ import annotations

import json
import textwrap

import pytest

from albprobe.cli import main
from probes.origin_check import DjangoSettings, SettingsError, check_origin, load_settings

NEW = "https://new.hakwonplus.com"
GOOD_MW = (
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
)


def S(**kw) -> DjangoSettings:  # noqa: N802
    kw.setdefault("MIDDLEWARE", GOOD_MW)
    return DjangoSettings(source="test", **kw)


def status(checks) -> dict[str, str]:
    return {c.name: c.status for c in checks}


def test_everything_admits_the_new_origin() -> None:
    s = S(
        ALLOWED_HOSTS=(".hakwonplus.com",),
        CORS_ALLOWED_ORIGINS=("https://hakwonplus.com", NEW),
        CSRF_TRUSTED_ORIGINS=("https://*.hakwonplus.com",),
    )
    checks = check_origin(NEW, s, api_url="https://api.hakwonplus.com/api/me")
    assert set(status(checks).values()) == {"pass"}
    assert len(checks) == 6


def test_nothing_admits_it_and_the_fixes_say_what_to_add() -> None:
    s = S(
        ALLOWED_HOSTS=("api.hakwonplus.com",),
        CORS_ALLOWED_ORIGINS=("https://hakwonplus.com",),
        CSRF_TRUSTED_ORIGINS=("https://hakwonplus.com",),
    )
    checks = {c.name: c for c in check_origin(NEW, s)}
    assert checks["CORS_ALLOWED_ORIGINS"].status == "fail"
    assert checks["CORS_ALLOWED_ORIGINS"].fix == f'add "{NEW}" to CORS_ALLOWED_ORIGINS'
    assert checks["CSRF_TRUSTED_ORIGINS"].status == "fail"
    front = checks["ALLOWED_HOSTS (front host)"]
    assert front.status == "fail"
    assert front.detail.startswith(
        "Invalid HTTP_HOST header: 'new.hakwonplus.com'. You may need to add"
        " 'new.hakwonplus.com' to ALLOWED_HOSTS."
    )


@pytest.mark.parametrize(
    "entries,expected",
    [
        (("https://new.hakwonplus.com",), "pass"),
        (("https://new.hakwonplus.com:443",), "fail"),  # netloc must match exactly
        (("http://new.hakwonplus.com",), "fail"),  # scheme must match
        (("https://new.hakwonplus.com/",), "pass"),  # urlsplit ignores the path (E014 warns)
    ],
)
def test_cors_allowed_origins_matching(entries, expected) -> None:
    assert (
        status(check_origin(NEW, S(CORS_ALLOWED_ORIGINS=entries)))["CORS_ALLOWED_ORIGINS"]
        == expected
    )


def test_cors_regexes_anchored_pass_unanchored_warn() -> None:
    anchored = S(CORS_ALLOWED_ORIGIN_REGEXES=(r"^https://\w+\.hakwonplus\.com$",))
    assert status(check_origin(NEW, anchored))["CORS_ALLOWED_ORIGIN_REGEXES"] == "pass"
    loose = S(CORS_ALLOWED_ORIGIN_REGEXES=(r"^https://\w+\.hakwonplus\.com",))
    [c] = [c for c in check_origin(NEW, loose) if c.name == "CORS_ALLOWED_ORIGIN_REGEXES"]
    assert c.status == "warn" and "not anchored" in c.detail


def test_allow_all_origins_is_a_warning() -> None:
    s = S(CORS_ALLOW_ALL_ORIGINS=True, CORS_ALLOW_CREDENTIALS=True)
    [c] = [c for c in check_origin(NEW, s) if c.name == "CORS_ALLOWED_ORIGINS"]
    assert c.status == "warn" and "every site can read logged-in responses" in c.detail


def test_near_miss_is_pointed_out() -> None:
    s = S(CORS_ALLOWED_ORIGINS=("http://new.hakwonplus.com",))
    [c] = [c for c in check_origin(NEW, s) if c.name == "CORS_ALLOWED_ORIGINS"]
    assert c.status == "fail" and "close but not equal: 'http://new.hakwonplus.com'" in c.detail


def test_csrf_scheme_rule_of_django_4() -> None:
    s = S(CSRF_TRUSTED_ORIGINS=(".hakwonplus.com",))
    [c] = [c for c in check_origin(NEW, s) if c.name == "CSRF_TRUSTED_ORIGINS"]
    assert c.status == "fail"
    assert c.detail.startswith(
        "As of Django 4.0, the values in the CSRF_TRUSTED_ORIGINS setting must start with a"
        " scheme (usually http:// or https://) but found .hakwonplus.com."
    )
    assert "https://*.hakwonplus.com" in c.fix


def test_csrf_wildcard_needs_same_scheme() -> None:
    ok = S(CSRF_TRUSTED_ORIGINS=("https://*.hakwonplus.com",))
    assert status(check_origin(NEW, ok))["CSRF_TRUSTED_ORIGINS"] == "pass"
    other_scheme = S(CSRF_TRUSTED_ORIGINS=("http://*.hakwonplus.com",))
    assert status(check_origin(NEW, other_scheme))["CSRF_TRUSTED_ORIGINS"] == "fail"


def test_allowed_hosts_rules() -> None:
    assert (
        status(check_origin(NEW, S(ALLOWED_HOSTS=("*",))))["ALLOWED_HOSTS (front host)"] == "pass"
    )
    debug = S(DEBUG=True)
    assert (
        status(check_origin("http://localhost:3000", debug))["ALLOWED_HOSTS (front host)"] == "pass"
    )
    assert status(check_origin(NEW, debug))["ALLOWED_HOSTS (front host)"] == "fail"


def test_middleware_order_and_urls_regex() -> None:
    wrong = S(MIDDLEWARE=tuple(reversed(GOOD_MW)))
    assert status(check_origin(NEW, wrong))["MIDDLEWARE"] == "fail"
    missing = S(MIDDLEWARE=("django.middleware.common.CommonMiddleware",))
    assert status(check_origin(NEW, missing))["MIDDLEWARE"] == "fail"
    only_api = S(CORS_URLS_REGEX=r"^/api/.*$")
    st = status(check_origin(NEW, only_api, api_url="https://api.hakwonplus.com/health"))
    assert st["CORS_URLS_REGEX"] == "fail"


def test_load_settings_file_and_module(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "academy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text('ALLOWED_HOSTS = ["api.hakwonplus.com"]\nDEBUG = False\n')
    (pkg / "prod.py").write_text(
        textwrap.dedent(
            """
            from academy.base import *  # noqa
            CORS_ORIGIN_WHITELIST = ("https://hakwonplus.com",)   # old alias
            CORS_ORIGIN_REGEX_WHITELIST = [r"^https://\\w+\\.hakwonplus\\.com$"]
            CSRF_TRUSTED_ORIGINS = ["https://hakwonplus.com"]
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    s = load_settings("academy.prod")
    assert s.ALLOWED_HOSTS == ("api.hakwonplus.com",)
    assert s.CORS_ALLOWED_ORIGINS == ("https://hakwonplus.com",)
    assert s.CORS_ALLOWED_ORIGIN_REGEXES == (r"^https://\w+\.hakwonplus\.com$",)
    f = load_settings(str(pkg / "prod.py"))
    assert f.CSRF_TRUSTED_ORIGINS == ("https://hakwonplus.com",)
    (tmp_path / "broken.py").write_text("import os\nSECRET_KEY = os.environ['NO_SUCH_VAR_X']\n")
    with pytest.raises(SettingsError, match="KeyError"):
        load_settings(str(tmp_path / "broken.py"))
    with pytest.raises(SettingsError, match="not found"):
        load_settings(str(tmp_path / "missing.py"))


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys) -> None:
    assert main(["origin-check", NEW, "--settings", str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("albprobe: error: settings file") and err.count("\n") == 1
    (tmp_path / "s.py").write_text('CORS_ALLOWED_ORIGINS = ["https://new.hakwonplus.com"]\n')
    assert main(["origin-check", "new.hakwonplus.com", "--settings", str(tmp_path / "s.py")]) == 2
    assert "is not an origin" in capsys.readouterr().err
    (tmp_path / "bad.py").write_text("CORS_ALLOWED_ORIGINS = 'https://x.com'\n")
    assert main(["origin-check", NEW, "--settings", str(tmp_path / "bad.py")]) == 2
    assert "must be a list" in capsys.readouterr().err


def test_cli_table_and_json(tmp_path, capsys) -> None:
    s = tmp_path / "s.py"
    s.write_text(
        'ALLOWED_HOSTS = [".hakwonplus.com"]\n'
        'CORS_ALLOWED_ORIGINS = ["https://new.hakwonplus.com"]\n'
        'CSRF_TRUSTED_ORIGINS = ["https://new.hakwonplus.com"]\n'
    )
    assert main(["origin-check", NEW, "--settings", str(s)]) == 0
    out = capsys.readouterr().out
    assert "all checks pass" in out and "PASS" in out
    assert main(["origin-check", "https://other.example", "--settings", str(s), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and {c["status"] for c in doc["checks"]} >= {"fail"}
