"""Recognise a pasted browser console line: which engine wrote it and which CORS check failed.

The patterns are not written by hand: every engine's renderer (probes.cors.messages*) is run
over a grid of Failures whose fields are sentinels, and each rendered line becomes a regex with
the sentinels as named groups. So the recognizer knows exactly the lines albprobe predicts, and
a wording fix in one place fixes both. A line that fits no pattern is not guessed at.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache

from probes.cors import messages as M

_S = "\x01"  # sentinel delimiter: never in a real console line
_SENTINELS: dict[str, tuple[str, str]] = {
    # field: (sentinel value, regex for it)
    "url": (f"{_S}url{_S}", r"\S+"),
    "origin": (f"{_S}origin{_S}", r"\S+?"),
    "param": (f"{_S}param{_S}", r".*?"),
    "redirected_from": (f"{_S}from{_S}", r"\S+"),
    "redirect_to": (f"{_S}to{_S}", r"\S+"),
    "redirect_raw": (f"{_S}raw{_S}", r"\S+"),
    "header": (f"{_S}header{_S}", r"\S+"),
    "value": (f"{_S}value{_S}", r".*"),
    "token": (f"{_S}token{_S}", r".*?"),
    "method": (f"{_S}method{_S}", r"\S+"),
    "host": (f"{_S}host{_S}", r"\S+"),
}
_STATUS_SENTINEL = 987
_PREFLIGHT_ONLY = frozenset(
    {
        M.PREFLIGHT_STATUS,
        M.PREFLIGHT_REDIRECT,
        M.ALLOW_METHODS,
        M.ALLOW_HEADERS,
        M.ALLOW_METHODS_INVALID,
        M.ALLOW_HEADERS_INVALID,
    }
)
_ORIGIN_VALUE_STEPS = frozenset(
    {M.ALLOW_ORIGIN_MULTIPLE, M.ALLOW_ORIGIN_INVALID, M.ALLOW_ORIGIN_MISMATCH}
)
_SENTINEL_RE = re.compile(f"{_S}(\\w+){_S}|{_STATUS_SENTINEL}")
_NAMES = {v[0]: k for k, v in _SENTINELS.items()}

# How a console pastes: Safari's Web Inspector "[Error] " and its "Failed to load resource: "
# (the same reason, reported on the resource), MiniBrowser's stdout prefix, console icons.
_PASTE_NOISE = re.compile(
    r"^(?:\[(?:Error|Warning|Log|Info)\]\s*|CONSOLE (?:\w+ )?(?:ERROR|WARN|WARNING|LOG) |"
    r"(?:❌|⚠️?)\s*|Failed to load resource: (?!net::))+"
)


@dataclass(frozen=True)
class Match:
    """What one console line says."""

    engine: str  # "chrome" | "firefox" | "webkit"
    steps: tuple[str, ...]  # the failed checks this exact text can come from
    kind: str  # "reason" | "follow-up" | "script-error" | "warning"
    fields: dict[str, str] = field(default_factory=dict)  # url, origin, status, param, ...
    preflight: bool | None = None  # None: the text does not say
    initiator: str | None = None  # "fetch" | "xhr"; None: the text does not say

    @property
    def status(self) -> int | None:
        s = self.fields.get("status")
        return int(s) if s and s.isdigit() else None


@dataclass
class _Reading:
    """What a pattern says about one step: the line's role for it, preflight, initiator."""

    kinds: set[str] = field(default_factory=set)
    preflight: set[bool] = field(default_factory=set)
    initiator: set[str] = field(default_factory=set)


@dataclass
class _Pattern:
    regex: re.Pattern[str]
    engine: str
    steps: dict[str, _Reading]  # in STEPS order


def _to_regex(text: str) -> str:
    out, pos, seen = [], 0, set()
    for m in _SENTINEL_RE.finditer(text):
        out.append(re.escape(text[pos : m.start()]))
        name = "status" if m.group(0) == str(_STATUS_SENTINEL) else _NAMES[m.group(0)]
        if name in seen:
            out.append(f"(?P={name})")
        else:
            seen.add(name)
            pattern = r"\d{3}" if name == "status" else _SENTINELS[name][1]
            out.append(f"(?P<{name}>{pattern})")
        pos = m.end()
    out.append(re.escape(text[pos:]))
    return "^" + "".join(out) + "$"


def _grid() -> list[M.Failure]:
    s = {k: v[0] for k, v in _SENTINELS.items()}
    out = []
    for step, initiator, preflight, hop, redirect, repeated, net in itertools.product(
        M.STEPS,
        ("fetch", "xhr"),
        (False, True),
        (None, s["redirected_from"]),
        (False, True),
        (False, True),
        (None, "net::ERR_CONNECTION_REFUSED"),
    ):
        if step in _PREFLIGHT_ONLY and not preflight:
            continue
        out.append(
            M.Failure(
                step,
                s["url"],
                s["origin"],
                initiator=initiator,
                preflight=preflight,
                param="no-cors-method" if step == M.REQUEST_INVALID and repeated else s["param"],
                status=_STATUS_SENTINEL,
                redirected_from=hop,
                redirect_to=s["redirect_to"] if redirect else None,
                redirect_raw=s["redirect_raw"] if redirect else None,
                header=s["header"],
                value=s["value"],
                token=s["token"],
                repeated=repeated,
                method=s["method"],
                host=s["host"],
                net_error=net,
                scheme="ftp",
            )
        )
    return out


@lru_cache(maxsize=1)
def patterns() -> tuple[_Pattern, ...]:
    """Every line each engine can print (or its script can get), as a pattern; built once."""
    table: dict[tuple[str, str], _Pattern] = {}

    def add(engine: str, kind: str, text: str, f: M.Failure) -> None:
        key = (engine, _to_regex(text))
        p = table.get(key)
        if p is None:
            p = table[key] = _Pattern(re.compile(key[1], re.S), engine, {})
        r = p.steps.setdefault(f.step, _Reading())
        r.kinds.add(kind)
        r.preflight.add(f.preflight)
        r.initiator.add(f.initiator)

    for f in _grid():
        for engine in M.ENGINES:
            try:
                lines = M.console_lines(engine, f)
            except ValueError:  # a step this engine has no words for
                continue
            for i, text in enumerate(lines):
                add(engine, "reason" if i == 0 else "follow-up", text, f)
            js = M.js_error(engine, f)
            if js != M.JS_XHR_ERROR:  # the XHR error event carries no text of its own
                add(engine, "script-error", js, f)
    warned = M.Failure(M.ALLOW_HEADERS, _SENTINELS["url"][0], "", preflight=True)
    for engine in M.ENGINES:
        warning = M.authorization_wildcard_warning(engine, warned.url)
        for initiator in ("fetch", "xhr") if warning is not None else ():
            add(engine, "warning", warning, warned._replace(initiator=initiator))
    return tuple(table.values())


def _fits(step: str, fields: dict[str, str]) -> bool:
    """Whether the values the line prints rule ``step`` out. A quoted Allow-Origin value names
    its own check (Firefox prints "does not match" for a list, an invalid value and another
    origin alike); a printed status that is not a redirect cannot be the redirect check."""
    from probes.cors.evaluate import REDIRECT_STATUSES, allow_origin_failure

    if step in _ORIGIN_VALUE_STEPS and "param" in fields:
        return allow_origin_failure(fields["param"]) == step
    if step == M.PREFLIGHT_REDIRECT and fields.get("status", "").isdigit():
        return int(fields["status"]) in REDIRECT_STATUSES
    return True


def clean(line: str) -> str:
    return _PASTE_NOISE.sub("", line.strip()).strip()


def recognize(line: str) -> list[Match]:
    """Every reading of ``line`` (usually one); [] when it is not a CORS line albprobe knows."""
    text = clean(line)
    if not text:
        return []
    found = []
    for p in patterns():
        m = p.regex.match(text)
        if m is None:
            continue
        fields = {k: v for k, v in m.groupdict().items() if v is not None}
        # No wider than the text: drop the steps its printed values rule out (all of them
        # ruled out would be a line no engine prints for these values: keep every reading).
        steps = [s for s in p.steps if _fits(s, fields)] or list(p.steps)
        readings = [p.steps[s] for s in steps]
        kinds = set().union(*(r.kinds for r in readings))
        # The reason line for one step and a follow-up for another reads as the reason.
        kind = next(k for k in ("reason", "warning", "script-error", "follow-up") if k in kinds)
        pres = set().union(*(r.preflight for r in readings))
        inits = set().union(*(r.initiator for r in readings))
        pre = next(iter(pres)) if len(pres) == 1 else None
        initiator = next(iter(inits)) if len(inits) == 1 else None
        found.append(Match(p.engine, tuple(steps), kind, fields, pre, initiator))
    return found
