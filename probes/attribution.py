"""Who produced a response: the proxy (ALB or another intermediary), the application server
(gunicorn's own error pages), the app (Django), or nobody (network failure).

Called on every request in the load hot path: fingerprints are compiled once per fingerprint
set, headers are scanned once for the few names any fingerprint needs, and body patterns run
only on error statuses (built-ins) over the first 8 KiB.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from probes.cors.neterrors import error_class
from probes.fingerprints import BUILTIN

SOURCES = ("proxy", "server", "app", "network")
_BODY_PREFIX = 8192


@dataclass(frozen=True)
class Attribution:
    source: str  # "proxy" | "server" | "app" | "network"
    evidence: (
        str  # e.g. "server: awselb/2.0", "body: gunicorn error page", "ConnectionRefusedError"
    )


@dataclass(frozen=True)
class _Compiled:
    name: str
    source: str
    header: str | None
    header_re: re.Pattern[str] | None
    body_re: re.Pattern[str] | None
    status: frozenset[int]
    label: str
    error_only: bool  # built-in body patterns: only for status >= 400


def _compile(fp: Any, builtin: bool) -> _Compiled:
    header = getattr(fp, "header", None)
    hp = getattr(fp, "header_pattern", None)
    bp = getattr(fp, "body_pattern", None)
    label = getattr(fp, "label", None) or f"body: {fp.name}"
    return _Compiled(
        name=fp.name,
        source=fp.source,
        header=header.lower() if header else None,
        header_re=re.compile(hp, re.I) if hp else None,
        body_re=re.compile(bp) if bp else None,
        status=frozenset(getattr(fp, "status", ()) or ()),
        label=label,
        error_only=builtin and bool(bp),
    )


_BUILTIN = tuple(_compile(fp, True) for fp in BUILTIN)


@lru_cache(maxsize=64)
def _fingerprint_set(extra: tuple[Any, ...]) -> tuple[tuple[_Compiled, ...], frozenset[str]]:
    compiled = tuple(_compile(fp, False) for fp in extra) + _BUILTIN
    names = {c.header for c in compiled if c.header} | {"server", "vary"}
    return compiled, frozenset(names)


def _items(headers: Any) -> Iterable[tuple[str, str]]:
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return headers.items()
    if hasattr(headers, "multi_items"):
        return headers.multi_items()
    return headers


def _body_text(body: bytes | str | None) -> str:
    if not body:
        return ""
    if isinstance(body, str):
        return body[:_BODY_PREFIX]
    return bytes(body[:_BODY_PREFIX]).decode("latin-1")


def attribute(
    status: int | None,
    headers: Any,
    body: bytes | str | None,
    error: BaseException | str | None = None,
    extra: Sequence[Any] = (),
) -> Attribution:
    """Attribute one response. ``status`` None/0 or an ``error`` without a status = network.
    ``extra`` = user fingerprints (core.config.Fingerprint or probes.fingerprints.Fingerprint),
    tried before the built-ins."""
    if not status:
        return Attribution("network", error_class(error) if error is not None else "no response")
    compiled, wanted = _fingerprint_set(tuple(extra))
    found: dict[str, str] = {}
    for name, value in _items(headers):
        lname = name.lower()
        if lname in wanted and lname not in found:
            found[lname] = value.strip()
    text: str | None = None
    for fp in compiled:
        if fp.status and status not in fp.status:
            continue
        evidence = ""
        if fp.header is not None:
            value = found.get(fp.header)
            if value is None or (fp.header_re is not None and not fp.header_re.search(value)):
                continue
            evidence = f"{fp.header}: {value}"
        if fp.body_re is not None:
            if fp.error_only and status < 400:
                continue
            if text is None:
                text = _body_text(body)
            if not fp.body_re.search(text):
                continue
            evidence = f"{evidence} + {fp.label}" if evidence else fp.label
        if not evidence:  # a fingerprint with only a status list
            evidence = f"status {status} ({fp.name})"
        return Attribution(fp.source, evidence)
    return Attribution("app", _app_evidence(status, found))


def _app_evidence(status: int, found: dict[str, str]) -> str:
    server = found.get("server")
    if server:
        return f"server: {server}"
    vary = found.get("vary")
    if vary and "origin" in vary.lower():
        return f"vary: {vary}"
    return f"HTTP {status}, no proxy or server fingerprint"
