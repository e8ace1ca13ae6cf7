"""`albprobe explain`: a pasted browser console line (or a file of them) -> which engine wrote
it, which CORS check failed, the status code where the text carries one, whether it fits a
proxy error page or the app's CORS setup, what the text cannot tell, and the next command.
Recognition is probes.cors.recognize (generated from the same templates the probe prints)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from core.errors import ConfigError

_ENGINE_FLAG = {"chrome": "chrome", "firefox": "firefox", "webkit": "webkit"}
_ORIGIN_STEPS = frozenset({"allow-origin-missing", "allow-origin-mismatch", "allow-origin-invalid"})

# One table per language; keys are stable ids, values format with the named fields.
TEXT = {
    "en": {
        "unknown": "not a CORS message I know",
        "engine": "engine: {engine}",
        "check": "failed check: {check}",
        "checks": "failed check: one of {checks}",
        "warning": "a warning, not a failure: the request passed (`*` in Access-Control-Allow-Headers"
        " will stop covering Authorization; list it by name)",
        "script": "the script's error: it never says which check failed; the console line"
        " before it does",
        "follow": "a follow-up line: the reason is the console line before it",
        "status": "status code: {status}",
        "null": "status (null): on its own, no HTTP response at all (refused, reset, DNS, TLS or"
        " timeout); right after another CORS line, only the closing line of that failure",
        "phase-pre": "it was the preflight (OPTIONS) that failed",
        "read-proxy": "fits a proxy error page: an ALB {status} carries no CORS headers, so the"
        " CORS message is a symptom of the target being down, slow or refusing",
        "read-500": "status 500 without CORS headers: the app server's own error page (gunicorn)"
        " or the proxy's; the app's CORS setup is probably not the cause",
        "read-app": "the app (or something in front of it) answered {status} without an"
        " Access-Control-Allow-Origin this origin accepts: the CORS setup (allowed origins,"
        " or a route/middleware that skips CORS)",
        "read-app-nostatus": "either a proxy error page (ALB 5xx: no CORS headers at all) or the"
        " app's CORS setup: the text alone cannot tell them apart",
        "read-cors": "the CORS headers themselves are wrong: the app's CORS setup (or a proxy"
        " that adds or rewrites CORS headers)",
        "read-pre-status": "the preflight got {status}: {why}",
        "why-5xx": "an ALB/proxy error page (the app never answered the OPTIONS)",
        "why-other": "the app or a proxy refused the OPTIONS request (route, auth or method"
        " handling before CORS)",
        "read-network": "no HTTP response: the connection failed (target down, port closed,"
        " DNS, TLS) - infrastructure, not the CORS setup",
        "read-request": "the browser refused the request before sending it (method or mode):"
        " fix the page's code, not the server",
        "cannot": "cannot tell from the text: {what}",
        "c-status": "the status code ({engine} does not print it here)",
        "c-phase": "whether the preflight or the actual request failed",
        "c-who": "who produced the response (ALB, nginx, gunicorn or the app)",
        "c-when": "when it happened and how often (the ALB logs say)",
        "c-url": "the URL and the page's origin (not in this line)",
        "c-origin": "the page's origin (not in this line)",
        "next": "next:",
        "n-cors": "albprobe cors {url} --origin {origin} --browser {engine}{method}",
        "n-cors-why": "   # replay what the browser sent; shows who produced each response",
        "n-check": "albprobe check   # ALB target health, listener and security-group checks",
        "n-logs": 'albprobe analyze --alb-logs "${{ALB_LOGS:?}}" --since {since} --until {until}'
        "   # the ALB's own log for the minute it happened (± 1 min)",
        "n-call": ' -X "${METHOD:?}" -H "${HEADER:?}: ${VALUE:?}"',
        "n-call-why": "   # replay the call with the page's method and script-set headers (a"
        " preflight was sent); shows who produced each response",
    },
    "ko": {
        "unknown": "알고 있는 CORS 메시지가 아님",
        "engine": "브라우저 엔진: {engine}",
        "check": "실패한 검사: {check}",
        "checks": "실패한 검사: 다음 중 하나 {checks}",
        "warning": "실패가 아니라 경고: 요청은 통과함 (Access-Control-Allow-Headers의 `*`가 곧"
        " Authorization을 덮지 않게 됨; 이름으로 명시할 것)",
        "script": "스크립트가 받은 에러: 어떤 검사가 실패했는지는 말하지 않음; 바로 앞 콘솔 줄을 볼 것",
        "follow": "뒤따르는 줄: 원인은 바로 앞 콘솔 줄에 있음",
        "status": "상태 코드: {status}",
        "null": "상태 (null): 이 줄만 있으면 HTTP 응답 자체가 없음 (연결 거부, 리셋, DNS, TLS 또는"
        " 타임아웃); 다른 CORS 줄 바로 뒤라면 그 실패의 마무리 줄일 뿐",
        "phase-pre": "실패한 것은 프리플라이트(OPTIONS) 요청",
        "read-proxy": "프록시 에러 페이지와 맞음: ALB {status} 응답에는 CORS 헤더가 없으므로 CORS"
        " 메시지는 타깃 장애·지연·거부의 증상",
        "read-500": "CORS 헤더 없는 500: 앱 서버(gunicorn) 자체 에러 페이지이거나 프록시의 것;"
        " 앱의 CORS 설정이 원인일 가능성은 낮음",
        "read-app": "앱(또는 앞단의 무언가)이 {status}로 답했으나 이 origin을 허용하는"
        " Access-Control-Allow-Origin이 없음: CORS 설정(허용 origin, 또는 CORS를 건너뛰는"
        " 라우트/미들웨어)",
        "read-app-nostatus": "프록시 에러 페이지(ALB 5xx: CORS 헤더 전혀 없음)일 수도, 앱의 CORS"
        " 설정일 수도 있음: 문구만으로는 구분 불가",
        "read-cors": "CORS 헤더 자체가 틀림: 앱의 CORS 설정(또는 CORS 헤더를 추가·수정하는 프록시)",
        "read-pre-status": "프리플라이트가 {status}를 받음: {why}",
        "why-5xx": "ALB/프록시 에러 페이지 (앱은 OPTIONS에 답하지 않음)",
        "why-other": "앱이나 프록시가 OPTIONS 요청을 거부 (CORS 이전의 라우트·인증·메서드 처리)",
        "read-network": "HTTP 응답 없음: 연결 실패 (타깃 다운, 포트 닫힘, DNS, TLS) - CORS 설정이"
        " 아니라 인프라 문제",
        "read-request": "브라우저가 보내기 전에 요청을 거부함 (메서드나 mode): 서버가 아니라"
        " 페이지 코드를 고칠 것",
        "cannot": "문구만으로 알 수 없는 것: {what}",
        "c-status": "상태 코드 ({engine}은(는) 여기서 찍지 않음)",
        "c-phase": "프리플라이트와 실제 요청 중 어느 쪽이 실패했는지",
        "c-who": "누가 응답을 만들었는지 (ALB, nginx, gunicorn, 앱)",
        "c-when": "언제, 얼마나 자주 일어났는지 (ALB 로그로 확인)",
        "c-url": "URL과 페이지 origin (이 줄에는 없음)",
        "c-origin": "페이지 origin (이 줄에는 없음)",
        "next": "다음 명령:",
        "n-cors": "albprobe cors {url} --origin {origin} --browser {engine}{method}",
        "n-cors-why": "   # 브라우저가 보낸 요청을 재현; 각 응답을 누가 만들었는지 표시",
        "n-check": "albprobe check   # ALB 타깃 헬스, 리스너, 보안 그룹 점검",
        "n-logs": 'albprobe analyze --alb-logs "${{ALB_LOGS:?}}" --since {since} --until {until}'
        "   # 그 시각(± 1분) ALB 자체 로그",
        "n-call": ' -X "${METHOD:?}" -H "${HEADER:?}: ${VALUE:?}"',
        "n-call-why": "   # 페이지가 쓴 메서드와 스크립트 헤더로 재현 (프리플라이트가 있었음);"
        " 각 응답을 누가 만들었는지 표시",
    },
}


@dataclass(frozen=True)
class Explanation:
    line: str
    known: bool
    engine: str | None = None
    steps: tuple[str, ...] = ()
    status: int | None = None
    kind: str | None = None
    text: tuple[str, ...] = ()  # the human-readable lines, in the chosen language

    def to_dict(self) -> dict:
        return {
            "line": self.line,
            "known": self.known,
            "engine": self.engine,
            "failed_checks": list(self.steps),
            "status": self.status,
            "kind": self.kind,
            "explanation": list(self.text),
        }


def _reading(steps: tuple[str, ...], status: int | None, t: dict) -> list[str]:
    """Proxy error page, app CORS setup, network or the page's own request: what fits."""
    s = set(steps)
    if s <= {"network", "redirect-credentials"} and status is None and "network" in s:
        return [t["read-network"]]
    if s <= {"request-invalid", "disallowed-by-mode", "disabled-scheme"}:
        return [t["read-request"]]
    if s & {"preflight-status", "preflight-redirect"} and not s & _ORIGIN_STEPS:
        if status is None:
            return [t["read-app-nostatus"]]
        why = t["why-5xx"] if status >= 500 else t["why-other"]
        return [t["read-pre-status"].format(status=status, why=why)]
    if s & _ORIGIN_STEPS and "allow-origin-missing" in s:
        if status is None:
            return [t["read-app-nostatus"]]
        if status in (502, 503, 504):
            return [t["read-proxy"].format(status=status)]
        if status == 500:
            return [t["read-500"]]
        return [t["read-app"].format(status=status)]
    return [t["read-cors"]]


def minute_window(at: float | None) -> tuple[str, str]:
    """--since/--until around the minute of ``at`` (one minute either side: screenshot clocks
    drift); placeholders when the time is unknown."""
    if at is None:
        return '"${SINCE:?}"', '"${UNTIL:?}"'
    from datetime import UTC, datetime

    start = int(at // 60) * 60 - 60

    def iso(ts: int) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return iso(start), iso(start + 180)


def explain_lines(
    lines: list[str], lang: str = "en", *, at: float | None = None
) -> list[Explanation]:
    """Each non-empty line explained; a line without a URL (WebKit's reason line) borrows the
    URL of the next line from the same engine (its "cannot load <url>" line)."""
    from probes.cors.recognize import recognize

    lines = [line for line in lines if line.strip()]
    found = [recognize(line) for line in lines]
    out = []
    for i, line in enumerate(lines):
        url = None
        if found[i] and "url" not in found[i][0].fields and i + 1 < len(lines):
            nxt = [m for m in found[i + 1] if m.engine == found[i][0].engine]
            url = nxt[0].fields.get("url") if nxt else None
        out.append(explain_line(line, lang, url_hint=url, at=at))
    return out


def explain_line(
    line: str, lang: str = "en", *, url_hint: str | None = None, at: float | None = None
) -> Explanation:
    from probes.cors.messages import ENGINE_NAMES
    from probes.cors.recognize import recognize

    t = TEXT[lang]
    matches = recognize(line)
    if not matches:
        return Explanation(line, False, text=(t["unknown"],))
    m = matches[0]
    steps = tuple(dict.fromkeys(s for x in matches if x.engine == m.engine for s in x.steps))
    engines = " / ".join(dict.fromkeys(ENGINE_NAMES[x.engine] for x in matches))
    out = [t["engine"].format(engine=engines)]
    if m.kind == "warning":
        out.append(t["warning"])
    elif m.kind == "script-error":
        out.append(t["script"])
    elif len(steps) > 3:  # a closing line shared by many failures
        out.append(t["follow"])
    else:
        key = "check" if len(steps) == 1 else "checks"
        out.append(t[key].format(check=steps[0], checks=", ".join(steps)))
    status = m.status
    if status is not None:
        out.append(t["status"].format(status=status))
    elif "Status code: (null)" in line:
        out.append(t["null"])
    if m.preflight:
        out.append(t["phase-pre"])
    if m.kind != "warning" and len(steps) <= 3:  # more: the line itself does not say
        out.extend(_reading(steps, status, t))
    cannot = []
    if status is None and "(null)" not in line and m.kind in ("reason", "follow-up"):
        cannot.append(t["c-status"].format(engine=ENGINE_NAMES[m.engine]))
    if m.preflight is None and m.kind in ("reason", "follow-up"):
        cannot.append(t["c-phase"])
    url, origin = m.fields.get("url") or url_hint, m.fields.get("origin")
    if not url:
        cannot.append(t["c-url"])
    elif not origin:
        cannot.append(t["c-origin"])
    cannot += [t["c-who"], t["c-when"]]
    out.append(t["cannot"].format(what="; ".join(cannot)))
    out.append(t["next"])
    method, why = "", t["n-cors-why"]
    if m.fields.get("method") and m.fields["method"] not in ("GET", "HEAD"):
        method = f" -X {m.fields['method']}"
    elif m.preflight:  # a bare replay would be a simple GET and send no preflight
        method, why = t["n-call"], t["n-call-why"]
    if m.initiator == "xhr":
        method += " --xhr"
    cors_cmd = t["n-cors"].format(
        url=url or '"${URL:?}"',
        origin=origin or '"${PAGE_ORIGIN:?}"',
        engine=_ENGINE_FLAG[m.engine],
        method=method,
    )
    out.append("  " + cors_cmd + why)
    out.append("  " + t["n-check"])
    since, until = minute_window(at)
    out.append("  " + t["n-logs"].format(since=since, until=until))
    return Explanation(line, True, m.engine, steps, status, m.kind, tuple(out))


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain(
        message: str = typer.Argument(
            None, help="A console line as the browser printed it (quote it)."
        ),
        file: Path = typer.Option(
            None, "--file", "-f", help="A file of console lines (one per line; '-' for stdin)."
        ),
        lang: str = typer.Option("en", "--lang", help="Output language: en or ko."),
        at: str = typer.Option(
            None,
            "--at",
            help="When the user saw it (ISO 8601, UTC if no zone): fills the ALB-log window.",
        ),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Explain a browser CORS console message (Chrome, Firefox or Safari/WebKit): which
        check failed, proxy or app, and the next command. Exit 1 when a line is unknown."""
        import json
        import sys

        if lang not in TEXT:
            raise ConfigError(f"--lang {lang!r}: must be one of {', '.join(TEXT)}")
        if (message is None) == (file is None):
            raise ConfigError(
                "explain needs a message or --file (not both)",
                hint='albprobe explain "Access to fetch at ..."  or  albprobe explain -f console.txt',
            )
        if file is not None:
            if str(file) == "-":
                lines = sys.stdin.read().splitlines()
            else:
                try:
                    lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError as exc:
                    raise ConfigError(
                        f"--file {str(file)!r}: {exc.strerror}", hint="pass a readable text file"
                    ) from None
        else:
            lines = [message]
        from analysis.pipeline import parse_when

        results = explain_lines(lines, lang, at=parse_when(at, name="--at"))
        if json_out:
            typer.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        else:
            for i, r in enumerate(results):
                if i:
                    typer.echo("")
                if len(results) > 1:
                    typer.echo(f"> {r.line.strip()}")
                for text in r.text:
                    typer.echo(text)
        if not results or not all(r.known for r in results):
            raise typer.Exit(1)
