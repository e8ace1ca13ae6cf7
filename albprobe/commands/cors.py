"""`albprobe cors` (browser-faithful CORS probe, `--scan` for misconfigurations) and
`albprobe origin-check` (does the Django config admit a new front-end origin?)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from core.errors import AlbprobeError, ConfigError

_CREDENTIALS = ("include", "omit", "same-origin")


def _parse_headers(values: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for raw in values:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise ConfigError(
                f"--header {raw!r}: expected 'Name: value'", hint='e.g. -H "X-Client: web"'
            )
        out.append((name.strip(), value.strip()))
    return tuple(out)


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{what} {url!r} is not an http(s) URL", hint="e.g. https://api.hakwonplus.com/api/me"
        )
    return url


def _resolve(
    urls: list[str] | None,
    *,
    config: Path | None,
    target: str | None,
    origin: str | None,
    method: str | None,
    headers: tuple[tuple[str, str], ...],
    data: str | None,
    credentials: str | None,
    mode: str | None,
) -> tuple[list[Any], dict[str, Any], Any]:
    from core.config import load_config, validate_origin
    from probes.cors import normalize_method
    from probes.cors_probe import Endpoint

    cfg = load_config(config)
    org = validate_origin(origin or cfg.browser.origin, key="--origin")
    creds = credentials or ("include" if cfg.browser.credentials else "omit")
    if creds not in _CREDENTIALS:
        raise ConfigError(f"--credentials {creds!r}: must be one of {', '.join(_CREDENTIALS)}")
    from core.config import CORS_MODES

    cmode = mode or cfg.browser.cors_mode
    if cmode not in CORS_MODES:
        raise ConfigError(
            f"--browser {cmode!r}: must be one of {', '.join(CORS_MODES)}",
            hint="chrome (default), firefox, webkit (Safari) or spec (the Fetch standard)",
        )
    # A script-set Authorization header is part of what the browser sends (it triggers a
    # preflight); its value comes only from the environment and is never printed.
    auth = os.environ.get(cfg.browser.auth_header_env) if cfg.browser.auth_header_env else None
    extra = headers + ((("Authorization", auth),) if auth else ())
    endpoints = []
    if urls:
        for u in urls:
            _check_url(u, "URL")
            name = urlsplit(u).path or "/"
            endpoints.append(Endpoint(name, u, normalize_method(method or "GET"), extra, data))
    else:
        base = target or cfg.target
        if base == "testbed":
            raise ConfigError(
                "no URL to probe: the config's target is 'testbed'",
                hint="pass a URL argument or --target http://127.0.0.1:<port> (see `albprobe testbed up`)",
            )
        base = _check_url(base, "--target").rstrip("/")
        for ep in cfg.endpoints:
            endpoints.append(
                Endpoint(
                    ep.name,
                    base + ep.path,
                    normalize_method(method or ep.method),
                    tuple(ep.headers.items()) + extra,
                    data if data is not None else ep.body,
                )
            )
    cookie = os.environ.get(cfg.browser.cookie_env) if cfg.browser.cookie_env else None
    opts = {"origin": org, "credentials": creds, "mode": cmode, "cookie": cookie}
    return endpoints, opts, cfg


def _cell(ex: Any) -> str:
    if ex is None:
        return "-"
    if ex.status is None:
        return f"{ex.error} [{ex.source}]"
    return f"{ex.status} {ex.source} ({ex.evidence})"


def _console() -> Any:
    """A terminal gets rich's own width; a pipe or file gets long lines (no mid-word folds)."""
    import sys

    from rich.console import Console

    wide = None if sys.stdout.isatty() else 240
    return Console(highlight=False, soft_wrap=False, width=wide)


def _esc(*texts: str) -> list[str]:
    """Server-controlled text (headers, messages) must not be read as rich markup."""
    from rich.markup import escape

    return [escape(t) for t in texts]


def _print_results(results: list[Any], origin: str, mode: str) -> None:
    from rich.table import Table

    console = _console()
    from probes.cors.messages import ENGINE_NAMES

    who = ENGINE_NAMES.get(mode, "the Fetch standard")
    table = Table(title=_esc(f"CORS as {who} sees it, from origin {origin} (browser: {mode})")[0])
    for col in ("endpoint", "preflight", "actual", "verdict", "browser message"):
        table.add_column(col, overflow="fold")
    for r in results:
        v = r.verdict
        verdict = "PASS" if v.ok else f"FAIL {v.step} ({v.phase})"
        msg = "\n".join(v.console) if len(v.console) > 1 else (v.message or "")
        if v.net_error:
            msg = f"{msg} [{v.net_error}]"
        if v.warnings:
            msg = (msg + " " if msg else "") + "warning: " + " ".join(v.warnings)
        table.add_row(
            *_esc(f"{r.method} {r.url}", _cell(r.preflight), _cell(r.actual), verdict, msg)
        )
    console.print(table)
    fails = [r for r in results if not r.ok]
    if not fails:
        console.print(f"all {len(results)} endpoint(s) pass the browser's CORS checks")
        return
    by_source: dict[str, int] = {}
    for r in fails:
        by_source[r.failing_source or "?"] = by_source.get(r.failing_source or "?", 0) + 1
    parts = ", ".join(f"{n} from the {s}" for s, n in sorted(by_source.items()))
    console.print(f"{len(fails)} of {len(results)} endpoint(s) fail; failing responses: {parts}")
    if set(by_source) <= {"proxy", "server", "network"}:
        console.print(
            "the 'CORS error' is a symptom: the failing responses were not produced by the app "
            "(a proxy/server error page or no response never carries CORS headers)"
        )
    elif "app" in by_source:
        console.print(
            "the app itself answered without the right CORS headers: check the CORS setup"
        )


def _print_scan(report: Any) -> None:
    from rich.table import Table

    console = _console()
    table = Table(
        title=_esc(
            f"CORS misconfiguration scan of {report.url} (allowed: {report.allowed_origin})"
        )[0]
    )
    for col in ("severity", "check", "origin sent", "ACAO / ACAC", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for f in report.findings:
        table.add_row(
            *_esc(f.severity, f.check, f.origin_sent, f"{f.acao} / {f.acac}", f.detail, f.fix)
        )
    console.print(table)
    if not report.findings:
        console.print("no misconfiguration found")
    for note in report.inconclusive:
        console.print(*_esc(f"inconclusive: {note}"))


def register(app: typer.Typer) -> None:
    @app.command("cors")
    def cors(
        urls: list[str] = typer.Argument(
            None, help="URLs to probe (default: the config's [[endpoints]] on --target)."
        ),
        origin: str = typer.Option(None, "--origin", help="Page origin (default: browser.origin)."),
        method: str = typer.Option(None, "--method", "-X", help="HTTP method (default GET)."),
        header: list[str] = typer.Option(
            [], "--header", "-H", help="Script-set request header 'Name: value' (repeatable)."
        ),
        data: str = typer.Option(None, "--data", help="Request body for the actual request."),
        credentials: str = typer.Option(
            None, "--credentials", help="fetch credentials mode: include | omit | same-origin."
        ),
        mode: str = typer.Option(
            None,
            "--browser",
            "--mode",
            help="Whose verdict and console words: chrome (default), firefox, webkit, spec.",
        ),
        xhr: bool = typer.Option(False, "--xhr", help="Word messages as XMLHttpRequest does."),
        target: str = typer.Option(None, "--target", help="Base URL for config endpoints."),
        config: Path = typer.Option(None, "--config", "-c", help="albprobe.toml"),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        scan: bool = typer.Option(False, "--scan", help="Scan for CORS misconfigurations."),
        timeout: float = typer.Option(10.0, "--timeout", help="Per-request timeout, seconds."),
        insecure: bool = typer.Option(False, "--insecure", help="Do not verify TLS certificates."),
        ca_bundle: Path = typer.Option(
            None,
            "--ca-bundle",
            help="PEM file of the CAs to trust for https:// (default: [browser] ca_bundle, else the system's).",
        ),
    ) -> None:
        """Send the preflight and the actual request exactly as the browser would; print its
        verdict, its console lines and who produced each response. Exit 1 when any endpoint
        fails."""
        endpoints, opts, cfg = _resolve(
            urls,
            config=config,
            target=target,
            origin=origin,
            method=method,
            headers=_parse_headers(header),
            data=data,
            credentials=credentials,
            mode=mode,
        )
        if timeout <= 0:
            raise ConfigError(f"--timeout must be > 0, got {timeout}")
        if ca_bundle is not None and not ca_bundle.is_file():
            raise ConfigError(
                f"--ca-bundle: no such file {str(ca_bundle)!r}",
                hint="give the PEM file of the CA that signed the API's certificate",
            )
        trust = str(ca_bundle) if ca_bundle else cfg.browser.ca_bundle
        if scan:
            from probes.cors_scan import SEVERITIES
            from probes.cors_scan import scan as run_scan

            reports = [
                run_scan(
                    ep.url,
                    opts["origin"],
                    timeout=timeout,
                    verify_tls=not insecure,
                    ca_bundle=trust,
                )
                for ep in {e.url: e for e in endpoints}.values()
            ]
            if json_out:
                typer.echo(json.dumps([r.to_dict() for r in reports], indent=2))
            else:
                for r in reports:
                    _print_scan(r)
            worst = max((SEVERITIES.index(r.worst) for r in reports if r.worst), default=0)
            if worst >= SEVERITIES.index("medium"):
                raise typer.Exit(1)
            return
        from probes.cors_probe import ProbeOptions, probe

        popts = ProbeOptions(
            origin=opts["origin"],
            mode=opts["mode"],
            credentials=opts["credentials"],
            initiator="xhr" if xhr else "fetch",
            timeout=timeout,
            verify_tls=not insecure,
            ca_bundle=trust,
            cookie=opts["cookie"],
            fingerprints=cfg.fingerprints,
        )
        results = probe(endpoints, popts)
        if json_out:
            doc = {
                "origin": popts.origin,
                "mode": popts.mode,
                "credentials": popts.credentials,
                "ok": all(r.ok for r in results),
                "results": [r.to_dict() for r in results],
            }
            typer.echo(json.dumps(doc, indent=2))
        else:
            _print_results(results, popts.origin, popts.mode)
        if not all(r.ok for r in results):
            raise typer.Exit(1)

    @app.command("origin-check")
    def origin_check(
        new_origin: str = typer.Argument(
            ..., help="The new front-end origin, e.g. https://new.hakwonplus.com"
        ),
        settings: str = typer.Option(
            ...,
            "--settings",
            help="Django settings file (path/settings.py) or module (pkg.settings).",
        ),
        url: str = typer.Option(
            None, "--url", help="An API URL: also check its host and send a live preflight."
        ),
        method: str = typer.Option("POST", "--method", "-X", help="Method of the live request."),
        header: list[str] = typer.Option(
            [],
            "--header",
            "-H",
            help="Header of the live request (default: Content-Type: application/json).",
        ),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        timeout: float = typer.Option(10.0, "--timeout"),
    ) -> None:
        """Do ALLOWED_HOSTS, CORS_ALLOWED_ORIGINS(_REGEXES) and CSRF_TRUSTED_ORIGINS all admit
        a new front-end origin? Exit 1 when any check fails."""
        from probes.origin_check import (
            SettingsError,
            check_origin,
            live_check,
            load_settings,
            summarize,
        )

        try:
            s = load_settings(settings)
            checks = check_origin(new_origin, s, api_url=_check_url(url, "--url") if url else None)
        except SettingsError as exc:
            raise AlbprobeError(str(exc), exit_code=2) from None
        if url:
            from probes.cors import normalize_method
            from probes.cors_probe import Endpoint, ProbeOptions, probe

            hdrs = _parse_headers(header) or (("Content-Type", "application/json"),)
            origin = new_origin.rstrip("/")
            res = probe(
                [
                    Endpoint(
                        "live",
                        url,
                        normalize_method(method),
                        hdrs,
                        None if normalize_method(method) in ("GET", "HEAD") else "{}",
                    )
                ],
                ProbeOptions(origin=origin, timeout=timeout),
            )[0]
            checks.append(live_check(res))
        ok = all(c.status != "fail" for c in checks)
        if json_out:
            typer.echo(
                json.dumps(
                    {
                        "origin": new_origin,
                        "settings": settings,
                        "ok": ok,
                        "checks": [c.__dict__ for c in checks],
                    },
                    indent=2,
                )
            )
        else:
            from rich.table import Table

            console = _console()
            table = Table(title=_esc(f"Does {settings} admit {new_origin}?")[0])
            for col in ("check", "result", "detail", "fix"):
                table.add_column(col, overflow="fold")
            for c in checks:
                table.add_row(*_esc(c.name, c.status.upper(), c.detail, c.fix or ""))
            console.print(table)
            console.print(summarize(checks))
        if not ok:
            raise typer.Exit(1)
