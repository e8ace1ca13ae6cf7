"""`albprobe cors --scan`: the CORS misconfiguration classes of Corsy, CORScanner, nuclei and
ZAP, probed with crafted Origin headers on a simple GET (what those scanners send).

A class is a finding when the server lets the crafted origin in: Access-Control-Allow-Origin
equals it exactly (what a browser requires). Severity rises one level when the response also
says Access-Control-Allow-Credentials: true (the attacker's page can then read the victim's
authenticated data). Classification is pure (``classify``); only ``scan`` touches the network.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from probes.attribution import attribute
from probes.cors.wire import CHROME_USER_AGENT
from probes.tls_trust import httpx_verify

SEVERITIES = ("info", "low", "medium", "high", "critical")

# check id -> (severity without credentials, with credentials, what it means, how to fix)
CHECKS: dict[str, tuple[str, str, str, str]] = {
    "reflect-any-origin": (
        "high",
        "critical",
        "any origin is reflected in Access-Control-Allow-Origin",
        "stop echoing Origin: list the front-end origins in CORS_ALLOWED_ORIGINS and turn "
        "CORS_ALLOW_ALL_ORIGINS off",
    ),
    "null-origin": (
        "high",
        "critical",
        "the 'null' origin (sandboxed iframes, data: and file: pages) is trusted",
        "remove 'null' from CORS_ALLOWED_ORIGINS",
    ),
    "prefix-match": (
        "high",
        "critical",
        "an attacker domain that starts with the allowed host is trusted (allowed.com.evil.tld)",
        "anchor origin regexes at the end with $ (CORS_ALLOWED_ORIGIN_REGEXES uses re.match)",
    ),
    "suffix-match": (
        "high",
        "critical",
        "an attacker domain that ends with the allowed host is trusted (evilallowed.com)",
        "match whole labels: r'^https://([a-z0-9-]+\\.)?hakwonplus\\.com$'",
    ),
    "substring-match": (
        "high",
        "critical",
        "a domain contained in the allowed one is trusted (substring check)",
        "compare origins exactly, not with 'in' or unanchored regexes",
    ),
    "unescaped-dot": (
        "high",
        "critical",
        "a regex with an unescaped '.' lets a look-alike domain in",
        "escape dots in CORS_ALLOWED_ORIGIN_REGEXES (\\.)",
    ),
    "special-characters": (
        "high",
        "critical",
        "the origin parser is fooled by special characters (allowed.com_.evil.tld, %60, ...)",
        "compare the parsed scheme and host exactly; reject origins that are not valid hosts",
    ),
    "http-origin-trusted": (
        "medium",
        "high",
        "the http:// twin of an https:// origin is trusted (a network attacker can forge it)",
        "list only https:// origins",
    ),
    "any-subdomain": (
        "low",
        "medium",
        "every subdomain of the allowed host is trusted (one XSS on any subdomain reads the API)",
        "list the subdomains that need access instead of a wildcard regex",
    ),
    "third-party-origin": (
        "medium",
        "high",
        "a third-party hosting origin anyone can publish on is trusted",
        "remove third-party hosting origins (github.io, codepen.io, jsfiddle.net, ...)",
    ),
    "wildcard-origin": (
        "low",
        "low",
        "Access-Control-Allow-Origin: * lets any site read non-credentialed responses",
        "fine for public data; otherwise list the allowed origins",
    ),
    "wildcard-with-credentials": (
        "low",
        "low",
        "'*' with Access-Control-Allow-Credentials: true is invalid: browsers refuse credentialed"
        " reads, so logged-in calls fail",
        "send the exact origin (from an allow-list) instead of '*' when credentials are needed",
    ),
    "missing-vary-origin": (
        "medium",
        "medium",
        "Access-Control-Allow-Origin is set per origin but Vary: Origin is missing (a cache can"
        " serve one origin's answer to another)",
        "add Vary: Origin (django-cors-headers always does)",
    ),
    "allowed-origin-rejected": (
        "info",
        "info",
        "the allowed origin itself gets no Access-Control-Allow-Origin on this URL",
        "run `albprobe cors` to see the browser's exact failure",
    ),
}
# Classes implied by reflect-any-origin (reported once, as reflect-any-origin).
_IMPLIED_BY_REFLECTION = frozenset(
    {
        "prefix-match",
        "suffix-match",
        "substring-match",
        "unescaped-dot",
        "special-characters",
        "any-subdomain",
        "third-party-origin",
        "http-origin-trusted",
    }
)
_SPECIAL_CHARS = ("_", "-", "%60", "!", "~", "$")
_THIRD_PARTY = ("https://albprobe-scan.github.io", "https://codepen.io", "https://jsfiddle.net")
BASELINE = "baseline"


@dataclass(frozen=True)
class ScanProbe:
    check: str
    origin: str


@dataclass(frozen=True)
class ScanResponse:
    probe: ScanProbe
    status: int | None
    acao: str | None
    acac: str | None
    vary: str | None
    source: str
    evidence: str
    error: str | None = None


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    url: str
    origin_sent: str
    acao: str | None
    acac: str | None
    detail: str
    fix: str


@dataclass(frozen=True)
class ScanReport:
    url: str
    allowed_origin: str
    findings: tuple[Finding, ...]
    responses: tuple[ScanResponse, ...]
    inconclusive: tuple[str, ...]  # why some probes say nothing (network, proxy errors)

    @property
    def worst(self) -> str | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITIES.index)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["worst"] = self.worst
        return d


def scan_probes(allowed_origin: str, token: str | None = None) -> list[ScanProbe]:
    """The crafted origins for one allowed origin (``https://hakwonplus.com``)."""
    tok = token or secrets.token_hex(4)
    parts = urlsplit(allowed_origin)
    scheme, host = parts.scheme, parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    out = [
        ScanProbe(BASELINE, allowed_origin),
        ScanProbe("reflect-any-origin", f"https://albprobe-{tok}.example"),
        ScanProbe("null-origin", "null"),
        ScanProbe("prefix-match", f"{scheme}://{host}.albprobe-{tok}.example"),
        ScanProbe("suffix-match", f"{scheme}://albprobe{host}{port}"),
    ]
    if len(host) > 1 and host[1] != ".":
        out.append(ScanProbe("substring-match", f"{scheme}://{host[1:]}{port}"))
    if "." in host:
        head, _, tail = host.rpartition(".")
        out.append(ScanProbe("unescaped-dot", f"{scheme}://{head}a{tail}{port}"))
    out += [
        ScanProbe("special-characters", f"{scheme}://{host}{c}.albprobe-{tok}.example")
        for c in _SPECIAL_CHARS
    ]
    if scheme == "https":
        out.append(ScanProbe("http-origin-trusted", f"http://{host}{port}"))
    out.append(ScanProbe("any-subdomain", f"{scheme}://albprobe-{tok}.{host}{port}"))
    out += [ScanProbe("third-party-origin", o) for o in _THIRD_PARTY]
    return out


def _finding(check: str, url: str, r: ScanResponse, credentials: bool, extra: str = "") -> Finding:
    base, with_creds, detail, fix = CHECKS[check]
    sev = with_creds if credentials else base
    cred_note = " and credentials are allowed" if credentials and base != with_creds else ""
    return Finding(check, sev, url, r.probe.origin, r.acao, r.acac, detail + cred_note + extra, fix)


def classify(url: str, allowed_origin: str, responses: Sequence[ScanResponse]) -> list[Finding]:
    """Turn the scan responses into findings (pure)."""
    findings: list[Finding] = []
    hits: dict[str, ScanResponse] = {}
    for r in responses:
        if r.probe.check == BASELINE or r.status is None:
            continue
        if r.acao is not None and r.acao == r.probe.origin:
            hits.setdefault(r.probe.check, r)
    reflected = "reflect-any-origin" in hits
    for check, r in hits.items():
        if reflected and check in _IMPLIED_BY_REFLECTION:
            continue
        findings.append(_finding(check, url, r, r.acac == "true"))
    base = next((r for r in responses if r.probe.check == BASELINE and r.status), None)
    if base is not None:
        if base.acao == "*":
            check = "wildcard-with-credentials" if base.acac == "true" else "wildcard-origin"
            findings.append(_finding(check, url, base, False))
        elif base.acao is None:
            findings.append(_finding("allowed-origin-rejected", url, base, False))
        elif base.acao == allowed_origin and "origin" not in (base.vary or "").lower():
            findings.append(_finding("missing-vary-origin", url, base, base.acac == "true"))
    findings.sort(key=lambda f: -SEVERITIES.index(f.severity))
    return findings


def _headers(origin: str) -> list[tuple[str, str]]:
    return [
        ("Accept", "*/*"),
        ("Origin", origin),
        ("User-Agent", CHROME_USER_AGENT),
        ("Sec-Fetch-Mode", "cors"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Dest", "empty"),
    ]


async def _one(client: httpx.AsyncClient, url: str, p: ScanProbe) -> ScanResponse:
    try:
        r = await client.get(url, headers=_headers(p.origin))
    except (httpx.TransportError, OSError) as exc:
        a = attribute(None, None, None, exc)
        return ScanResponse(p, None, None, None, None, a.source, a.evidence, a.evidence)
    h = r.headers
    acao = ", ".join(h.get_list("access-control-allow-origin")) or None
    acac = ", ".join(h.get_list("access-control-allow-credentials")) or None
    a = attribute(r.status_code, h, r.content)
    return ScanResponse(p, r.status_code, acao, acac, h.get("vary"), a.source, a.evidence)


async def scan_async(
    url: str,
    allowed_origin: str,
    *,
    timeout: float = 10.0,
    verify_tls: bool = True,
    ca_bundle: str | None = None,
    concurrency: int = 4,
    token: str | None = None,
) -> ScanReport:
    probes = scan_probes(allowed_origin, token)
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        timeout=timeout, verify=httpx_verify(ca_bundle, verify_tls), follow_redirects=False
    ) as c:

        async def run(p: ScanProbe) -> ScanResponse:
            async with sem:
                return await _one(c, url, p)

        responses = await asyncio.gather(*(run(p) for p in probes))
    inconclusive = []
    for r in responses:
        if r.status is None:
            inconclusive.append(f"{r.probe.origin}: no response ({r.error})")
        elif r.source in ("proxy", "server"):
            inconclusive.append(
                f"{r.probe.origin}: HTTP {r.status} from the {r.source} ({r.evidence}), not the app"
            )
    return ScanReport(
        url,
        allowed_origin,
        tuple(classify(url, allowed_origin, responses)),
        tuple(responses),
        tuple(inconclusive),
    )


def scan(url: str, allowed_origin: str, **kw: Any) -> ScanReport:
    return asyncio.run(scan_async(url, allowed_origin, **kw))
