"""`albprobe origin-check`: does a Django API admit a new front-end origin?

The runbook's "new front domain" step: ALLOWED_HOSTS, CORS_ALLOWED_ORIGINS /
CORS_ALLOWED_ORIGIN_REGEXES (django-cors-headers' own matching rules), CSRF_TRUSTED_ORIGINS
(Django >= 4.0: scheme required, `https://*.example.com` for subdomains), the CorsMiddleware
position, and, when an API URL is given, a live preflight from the new origin.
The checks are pure functions of the settings values; only loading them runs user code.
"""

from __future__ import annotations

import importlib
import re
import runpy
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.utils.http import is_same_domain

CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"
COMMON_MIDDLEWARE = "django.middleware.common.CommonMiddleware"
DEBUG_DEFAULT_HOSTS = (".localhost", "127.0.0.1", "[::1]")


class SettingsError(ValueError):
    """The settings could not be loaded or the origin is malformed (the CLI exits 2)."""


@dataclass(frozen=True)
class DjangoSettings:
    source: str
    ALLOWED_HOSTS: tuple[str, ...] = ()
    DEBUG: bool = False
    CORS_ALLOWED_ORIGINS: tuple[str, ...] = ()
    CORS_ALLOWED_ORIGIN_REGEXES: tuple[Any, ...] = ()
    CORS_ALLOW_ALL_ORIGINS: bool = False
    CORS_ALLOW_CREDENTIALS: bool = False
    CORS_URLS_REGEX: Any = r"^.*$"
    CSRF_TRUSTED_ORIGINS: tuple[str, ...] = ()
    MIDDLEWARE: tuple[str, ...] | None = None

    @classmethod
    def from_namespace(cls, ns: dict[str, Any], source: str) -> DjangoSettings:
        def seq(*names: str) -> tuple[Any, ...]:
            for n in names:  # django-cors-headers' old aliases come second
                if n in ns and ns[n] is not None:
                    v = ns[n]
                    if isinstance(v, str):
                        raise SettingsError(f"{source}: {n} must be a list, got the string {v!r}")
                    return tuple(v)
            return ()

        def flag(*names: str) -> bool:
            return next((bool(ns[n]) for n in names if n in ns), False)

        return cls(
            source=source,
            ALLOWED_HOSTS=seq("ALLOWED_HOSTS"),
            DEBUG=flag("DEBUG"),
            CORS_ALLOWED_ORIGINS=seq("CORS_ALLOWED_ORIGINS", "CORS_ORIGIN_WHITELIST"),
            CORS_ALLOWED_ORIGIN_REGEXES=seq(
                "CORS_ALLOWED_ORIGIN_REGEXES", "CORS_ORIGIN_REGEX_WHITELIST"
            ),
            CORS_ALLOW_ALL_ORIGINS=flag("CORS_ALLOW_ALL_ORIGINS", "CORS_ORIGIN_ALLOW_ALL"),
            CORS_ALLOW_CREDENTIALS=flag("CORS_ALLOW_CREDENTIALS"),
            CORS_URLS_REGEX=ns.get("CORS_URLS_REGEX", r"^.*$"),
            CSRF_TRUSTED_ORIGINS=seq("CSRF_TRUSTED_ORIGINS"),
            MIDDLEWARE=tuple(ns["MIDDLEWARE"]) if ns.get("MIDDLEWARE") is not None else None,
        )


def load_settings(spec: str) -> DjangoSettings:
    """A settings file (``path/to/settings.py``) or module (``academy.settings.prod``; the
    current directory is on the import path). Runs the settings code, as Django would."""
    path = Path(spec)
    added: list[str] = []
    try:
        if spec.endswith(".py") or path.is_file():
            if not path.is_file():
                raise SettingsError(
                    f"settings file {spec!r} not found (give a .py file or a dotted module name)"
                )
            for p in (str(path.resolve().parent), str(Path.cwd())):
                if p not in sys.path:
                    sys.path.insert(0, p)
                    added.append(p)
            ns = runpy.run_path(str(path), run_name="albprobe_django_settings")
        else:
            if str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
                added.append(str(Path.cwd()))
            ns = vars(importlib.import_module(spec))
    except SettingsError:
        raise
    except BaseException as exc:  # noqa: BLE001 - user code: report any failure in one line
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SettingsError(
            f"cannot load Django settings {spec!r}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)
    return DjangoSettings.from_namespace(ns, spec)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass" | "fail" | "warn" | "skip"
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class OriginReport:
    origin: str
    settings: str
    checks: tuple[Check, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


def validate_new_origin(origin: str) -> tuple[str, str, str]:
    """(origin without trailing slash, scheme, netloc); SettingsError if not an origin."""
    o = origin.rstrip("/")
    parts = urlsplit(o)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise SettingsError(
            f"{origin!r} is not an origin: write scheme://host[:port], e.g. https://new.hakwonplus.com"
        )
    return o, parts.scheme, parts.netloc


def _host(netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[: host.find("]") + 1].lower()
    return host.split(":", 1)[0].lower()


def check_cors(origin: str, s: DjangoSettings) -> Check:
    """django-cors-headers' CorsMiddleware.origin_found_in_white_lists, verbatim in effect."""
    o, scheme, netloc = validate_new_origin(origin)
    name = "CORS_ALLOWED_ORIGINS"
    if s.CORS_ALLOW_ALL_ORIGINS:
        extra = (
            " together with CORS_ALLOW_CREDENTIALS: every site can read logged-in responses"
            if s.CORS_ALLOW_CREDENTIALS
            else ""
        )
        return Check(
            name,
            "warn",
            f"admitted only because CORS_ALLOW_ALL_ORIGINS is on{extra}",
            f'turn CORS_ALLOW_ALL_ORIGINS off and list "{o}" in CORS_ALLOWED_ORIGINS',
        )
    for entry in s.CORS_ALLOWED_ORIGINS:
        e = urlsplit(entry)
        if e.scheme == scheme and e.netloc == netloc:
            return Check(name, "pass", f"listed as {entry!r}")
    for pattern in s.CORS_ALLOWED_ORIGIN_REGEXES:
        if re.match(pattern, o):
            text = getattr(pattern, "pattern", pattern)
            if not str(text).endswith(("$", "\\Z")):
                return Check(
                    "CORS_ALLOWED_ORIGIN_REGEXES",
                    "warn",
                    f"matches {text!r}, which is not anchored with $ (re.match anchors only the"
                    " start: look-alike domains match too)",
                    f"end the pattern with $: {text}$",
                )
            return Check("CORS_ALLOWED_ORIGIN_REGEXES", "pass", f"matches {text!r}")
    near = [
        e
        for e in s.CORS_ALLOWED_ORIGINS
        if _host(urlsplit(e).netloc or e) == _host(netloc) or e.rstrip("/") == o
    ]
    hint = ""
    if near:
        hint = f"; close but not equal: {', '.join(repr(e) for e in near)} (scheme, port and no path must match)"
    return Check(
        name,
        "fail",
        f"{o!r} is in neither CORS_ALLOWED_ORIGINS nor CORS_ALLOWED_ORIGIN_REGEXES{hint}: the"
        " browser reports \"No 'Access-Control-Allow-Origin' header is present\"",
        f'add "{o}" to CORS_ALLOWED_ORIGINS',
    )


def check_csrf(origin: str, s: DjangoSettings) -> Check:
    """Django's CsrfViewMiddleware._origin_verified for a cross-origin request, plus the
    Django 4.0 scheme rule (system check 4_0.E001)."""
    o, scheme, netloc = validate_new_origin(origin)
    name = "CSRF_TRUSTED_ORIGINS"
    bad = [e for e in s.CSRF_TRUSTED_ORIGINS if "://" not in e]
    if bad:
        return Check(
            name,
            "fail",
            "As of Django 4.0, the values in the CSRF_TRUSTED_ORIGINS setting must start with a"
            f" scheme (usually http:// or https://) but found {bad[0]}. See the release notes for"
            " details.",
            f"write {bad[0]!r} as 'https://{bad[0].lstrip('.').lstrip('*.')}' (or"
            f" 'https://*.{bad[0].lstrip('.').lstrip('*.')}' for subdomains)",
        )
    if o in {e for e in s.CSRF_TRUSTED_ORIGINS if "*" not in e}:
        return Check(name, "pass", f"listed as {o!r}")
    for entry in s.CSRF_TRUSTED_ORIGINS:
        if "*" in entry:
            e = urlsplit(entry)
            if e.scheme == scheme and is_same_domain(netloc, e.netloc.lstrip("*")):
                return Check(name, "pass", f"matches {entry!r}")
    return Check(
        name,
        "fail",
        f"{o!r} is not trusted: POST/PUT/PATCH/DELETE requests that rely on Django's session"
        " and CSRF cookies get 403 (CSRF verification failed: Origin checking failed)",
        f'add "{o}" to CSRF_TRUSTED_ORIGINS (token-authenticated APIs without'
        " SessionAuthentication can ignore this)",
    )


def check_allowed_hosts(host: str, s: DjangoSettings, *, role: str) -> Check:
    """django.http.request.validate_host, with Django's DEBUG default list."""
    from django.http.request import split_domain_port, validate_host

    domain, _port = split_domain_port(host)
    allowed = s.ALLOWED_HOSTS
    if s.DEBUG and not allowed:
        allowed = DEBUG_DEFAULT_HOSTS
    name = f"ALLOWED_HOSTS ({role})"
    if domain and validate_host(domain, allowed):
        return Check(name, "pass", f"{domain!r} is admitted")
    why = (
        "the API answers 400 (DisallowedHost) to requests for this Host"
        if role == "API host"
        else "needed when this Django also serves the new domain (pages, admin, SSR)"
    )
    return Check(
        name,
        "fail",
        f"Invalid HTTP_HOST header: {host!r}. You may need to add {domain!r} to ALLOWED_HOSTS."
        f" ({why})",
        f'add "{domain}" to ALLOWED_HOSTS',
    )


def check_middleware(s: DjangoSettings) -> Check:
    name = "MIDDLEWARE"
    if s.MIDDLEWARE is None:
        return Check(name, "skip", "MIDDLEWARE is not set in these settings")
    mw = list(s.MIDDLEWARE)
    if CORS_MIDDLEWARE not in mw:
        return Check(
            name,
            "fail",
            f"{CORS_MIDDLEWARE} is not installed: no response gets CORS headers",
            f'add "{CORS_MIDDLEWARE}" at the top of MIDDLEWARE',
        )
    if COMMON_MIDDLEWARE in mw and mw.index(CORS_MIDDLEWARE) > mw.index(COMMON_MIDDLEWARE):
        return Check(
            name,
            "fail",
            "CorsMiddleware comes after CommonMiddleware: responses CommonMiddleware generates"
            " (redirects, 400 DisallowedHost) carry no CORS headers",
            "move CorsMiddleware above CommonMiddleware (as high as possible)",
        )
    return Check(name, "pass", f"CorsMiddleware is at position {mw.index(CORS_MIDDLEWARE) + 1}")


def check_urls_regex(path: str, s: DjangoSettings) -> Check:
    if re.match(s.CORS_URLS_REGEX, path):
        return Check("CORS_URLS_REGEX", "pass", f"{path!r} is covered")
    text = getattr(s.CORS_URLS_REGEX, "pattern", s.CORS_URLS_REGEX)
    return Check(
        "CORS_URLS_REGEX",
        "fail",
        f"{path!r} does not match {text!r}: django-cors-headers skips this path",
        "widen CORS_URLS_REGEX",
    )


def check_origin(origin: str, s: DjangoSettings, *, api_url: str | None = None) -> list[Check]:
    """All static checks for ``origin`` (pure; the live preflight is separate)."""
    o, _scheme, netloc = validate_new_origin(origin)
    checks = [
        check_cors(o, s),
        check_csrf(o, s),
        check_allowed_hosts(netloc, s, role="front host"),
    ]
    if api_url:
        parts = urlsplit(api_url)
        checks.append(check_allowed_hosts(parts.netloc, s, role="API host"))
        checks.append(check_urls_regex(parts.path or "/", s))
    checks.append(check_middleware(s))
    return checks


def live_check(result: Any) -> Check:
    """Turn a probes.cors_probe.ProbeResult into a Check row."""
    pre = result.preflight
    act = result.actual
    parts = []
    if pre is not None:
        parts.append(f"preflight {pre.status or pre.error} from {pre.source} ({pre.evidence})")
    if act is not None:
        parts.append(f"actual {act.status or act.error} from {act.source} ({act.evidence})")
    where = "; ".join(parts)
    if result.ok:
        return Check("live preflight", "pass", f"{result.method} {result.url}: {where}")
    return Check(
        "live preflight",
        "fail",
        f"{result.method} {result.url}: {where}: {result.verdict.message}",
        None
        if result.failing_source == "app"
        else "the failing response did not come from the app: see `albprobe cors` and the proxy",
    )


def summarize(checks: Sequence[Check]) -> str:
    fails = [c.name for c in checks if c.status == "fail"]
    return "all checks pass" if not fails else f"{len(fails)} failing: {', '.join(fails)}"
