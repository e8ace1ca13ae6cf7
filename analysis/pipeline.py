"""analyze = open inputs -> figures -> verdict -> reports (summary.json, report.html, timeline.png)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis import correlate, dataset, replay_compare, verdict
from analysis.parsers import alb as alb_parser
from analysis.parsers.common import ParseStats
from analysis.reports import thresholds as th
from core import __version__
from core.errors import AlbprobeError


@dataclass
class Result:
    verdict: verdict.Verdict
    timeline: correlate.Timeline
    outputs: list[Path] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    extra_tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replay: dict[str, Any] | None = None  # a replay run: reproduced?, fidelity (replay_compare)

    @property
    def exit_code(self) -> int:
        return 1 if any(b["breached"] for b in self.breaches) else 0


def _version() -> str:
    return __version__


def _write(
    res: Result, out: Path, title: str, subtitle: str, summary_extra: dict[str, Any]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = res.verdict.to_dict()
    summary.update(summary_extra)
    summary["fail_on"] = res.breaches
    summary["tables"] = res.extra_tables
    js = out / "summary.json"
    js.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    # imported here: a verdict without a report (compare's analyses) needs no matplotlib
    from analysis.reports import html as html_report

    page, png = html_report.render(
        res.verdict,
        res.timeline,
        title=title,
        subtitle=subtitle,
        extra_tables={k: v[:200] for k, v in res.extra_tables.items()},
        version=_version(),
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "timeline.png").write_bytes(png)
    res.outputs = [js, out / "report.html", out / "timeline.png"]


def analyze_run(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    fail_on: list[str] | None = None,
    write: bool = True,
) -> Result:
    """Analyse a run directory; reports go to <run>/report/ unless ``out`` is given."""
    thresholds = [th.parse(e) for e in fail_on or []]
    ds = dataset.open_run(run_dir)
    try:
        figs, tl = correlate.compute(ds)
        sec = ds.meta.get("security_findings") or []
        v = verdict.decide(
            figs, security_findings=sec if isinstance(sec, list) else [], context="run"
        )
        res = Result(v, tl, breaches=th.evaluate(thresholds, figs))
        if ds.present.get("alb_log"):
            res.extra_tables = alb_tables(ds)
        # `albprobe replay`'s runs: original vs replay
        replay = replay_compare.section(ds.con, Path(run_dir), ds.meta)
        if replay is not None:
            res.extra_tables.update(replay.pop("tables"))
            res.replay = replay
    finally:
        ds.close()
    if write:
        meta = ds.meta
        subtitle = (
            f"run {meta.get('run_id', Path(run_dir).name)} - status {meta.get('status', '?')}"
        )
        if meta.get("started_at"):
            subtitle += " - started " + _iso(meta["started_at"])
        _write(
            res,
            Path(out) if out else Path(run_dir) / "report",
            str(meta.get("run_id") or Path(run_dir).name),
            subtitle,
            {"run_dir": str(run_dir)} | ({"replay": res.replay} if res.replay else {}),
        )
    return res


def _iso(ts: float) -> str:
    return f"{_utc(ts)} UTC"


def parse_when(value: str | None, *, name: str) -> float | None:
    """--since/--until: ISO 8601 (UTC if no zone) or epoch seconds."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise AlbprobeError(
            f"{name} {value!r}: not a time",
            hint="use ISO 8601 like 2026-11-26T13:00:00Z or epoch seconds",
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


S3Fetch = Callable[[str, float, float, Path], list[Path]]


def fetch_alb_logs(
    source: str,
    since: float | None,
    until: float | None,
    dest: Path,
    *,
    s3_fetch: S3Fetch | None = None,
) -> list[Path]:
    """A local folder/file of ALB logs, or an s3:// prefix / ALB ARN fetched by ``s3_fetch``
    (the CLI passes the AWS collector, with the config's profile, region and endpoint)."""
    if source.startswith(("s3://", "arn:aws:elasticloadbalancing")):
        if since is None or until is None:
            raise AlbprobeError(
                f"--alb-logs {source}: --since and --until are required when reading from S3",
                hint="e.g. --since 2026-11-26T12:00Z --until 2026-11-26T13:00Z",
            )
        if s3_fetch is None:
            raise AlbprobeError(
                f"--alb-logs {source}: no S3 reader given",
                hint="download the objects first (aws s3 sync s3://bucket/prefix/AWSLogs/... ./alb-logs) and pass the folder",
            )
        return _one_balancer(source, list(s3_fetch(source, since, until, dest)))
    root = Path(source)
    if not root.exists():
        raise AlbprobeError(
            f"--alb-logs {source}: no such file or folder",
            hint="pass a folder of ALB access-log objects (.log or .log.gz) or an s3:// prefix",
        )
    files = alb_parser.list_files(root)
    if not files:
        raise AlbprobeError(
            f"--alb-logs {source}: no .log or .log.gz files in it",
            hint="ALB objects are named <account>_elasticloadbalancing_<region>_app.<lb>_<end>_<ip>_<rand>.log.gz",
        )
    return _one_balancer(source, files)


def _one_balancer(source: str, files: list[Path]) -> list[Path]:
    """One load balancer's objects: a region's prefix (or a folder synced from it) holds every
    balancer's logs, and their requests, targets and 5xx mixed would make one diagnosis of two
    incidents. Told from the object names, before any line is read."""
    found = alb_parser.balancers(files)
    if len(found) > 1:
        raise AlbprobeError(
            f"--alb-logs {source}: the objects are of {len(found)} load balancers "
            f"({', '.join(found[:3])}{', ...' if len(found) > 3 else ''})",
            hint="pass one load balancer's objects: a folder of them, or filter the sync, e.g. "
            f"aws s3 sync ... --exclude '*' --include '*_{found[0].split()[0]}_*'",
        )
    return files


def alb_tables(ds: dataset.Dataset) -> dict[str, list[dict[str, Any]]]:
    """Which 5xx the ALB generated and which the target returned, per target, minute and URL.

    ``keepalive_signature`` counts keep-alive races only (the target closed a reused connection
    at once); a worker killed at gunicorn's timeout (``timeout_kill``) and a target that closed
    after seconds of processing (``closed_late``) are counted apart: one definition,
    ``alb_parser.target_closed_kind_sql``, shared with the figures.
    """
    kind = alb_parser.target_closed_kind_sql(correlate.gunicorn_timeout_s(ds))
    closes = f"""count(*) FILTER (WHERE {kind} = 'keepalive-race') AS keepalive_signature,
                  count(*) FILTER (WHERE {kind} = 'timeout-kill') AS timeout_kill,
                  count(*) FILTER (WHERE {kind} = 'closed-late') AS closed_late"""
    per_minute = correlate._rows(
        ds,
        # grouped on the minute's number, formatted once per group kept (not once per entry)
        f"""SELECT strftime(to_timestamp(m * 60), '%Y-%m-%d %H:%M') AS minute, * EXCLUDE (m, bad)
           FROM (SELECT floor(ts / 60) AS m,
                  coalesce(target_port, '-') AS target,
                  count(*) AS requests,
                  count(*) FILTER (WHERE elb_status_code >= 500 AND target_status_code IS NULL) AS alb_5xx,
                  {closes},
                  count(*) FILTER (WHERE {alb_parser.CONNECT_FAILED_SQL}) AS connect_failed,
                  count(*) FILTER (WHERE elb_status_code = 504 AND target_status_code IS NULL) AS alb_504,
                  count(*) FILTER (WHERE target_status_code >= 500) AS target_5xx,
                  count(*) FILTER (WHERE elb_status_code >= 500) AS bad
           FROM alb GROUP BY 1, 2)
           WHERE bad > 0 ORDER BY m, target LIMIT 5000""",
    )
    per_target = correlate._rows(
        ds,
        f"""SELECT coalesce(target_port, '-') AS target, count(*) AS requests,
                  count(*) FILTER (WHERE elb_status_code >= 500 AND target_status_code IS NULL) AS alb_5xx,
                  {closes},
                  count(*) FILTER (WHERE target_status_code >= 500) AS target_5xx,
                  round(quantile_cont(target_processing_time, 0.99) FILTER (WHERE target_processing_time >= 0) * 1000) AS target_p99_ms
           FROM alb GROUP BY 1 ORDER BY alb_5xx DESC, requests DESC LIMIT 500""",
    )
    # The URL as the client sent it (escapes decoded, query string left out): timeout kills
    # gather on slow endpoints, races spread over all of them.
    url = alb_parser.decode_sql(
        f"split_part({alb_parser.request_part_sql('request', 'url')}, '?', 1)"
    )
    per_url = correlate._rows(
        ds,
        f"""SELECT {alb_parser.request_part_sql("request", "method")} AS method, {url} AS url,
                  count(*) FILTER (WHERE target_status_code IS NULL) AS alb_5xx,
                  {closes},
                  count(*) FILTER (WHERE target_status_code >= 500) AS target_5xx
           FROM alb WHERE elb_status_code >= 500 OR target_status_code >= 500
           GROUP BY 1, 2 ORDER BY alb_5xx + target_5xx DESC, 1, 2 LIMIT 200""",
    )
    return {
        "ALB 5xx per target": per_target,
        "ALB 5xx per minute and target": per_minute,
        "ALB 5xx per URL": per_url,
    }


def _no_entries(source: str, st: ParseStats, *, windowed: bool) -> AlbprobeError:
    """The one-line error when no entry is left: name corrupt objects, and suggest the window
    only when one was given."""
    corrupt = ""
    if st.unreadable_files:
        names = ", ".join(Path(f).name for f in st.unreadable_files[:3])
        more = f" and {len(st.unreadable_files) - 3} more" if len(st.unreadable_files) > 3 else ""
        corrupt = f"{names}{more} cannot be decompressed (corrupt .gz)"
        if not st.lines:
            return AlbprobeError(
                f"--alb-logs {source}: {corrupt}, no entry read",
                hint="download the object(s) again (aws s3 cp s3://<bucket>/<key> .) or remove them",
            )
    what = "in the window" if windowed else "read"
    if windowed and st.parsed and st.first_ts is not None and st.last_ts is not None:
        # The entries are there, the window misses them: say where they are. A time without
        # a zone is UTC, as the ALB logs; a window given in local time misses by its offset.
        return AlbprobeError(
            f"--alb-logs {source}: no ALB log entry in the window: the {st.parsed:,} entries "
            f"read span {_utc(st.first_ts)} to {_utc(st.last_ts)} UTC",
            hint="set --since/--until inside that span; a time without a zone is UTC: add the "
            "zone for local time, e.g. --since 2026-11-26T21:00+09:00",
        )
    return AlbprobeError(
        f"--alb-logs {source}: no ALB log entry {what} ({st.lines:,} lines read, "
        f"{st.malformed:,} malformed{'; ' + corrupt if corrupt else ''})",
        hint=(
            "check --since/--until (UTC) and that the files are ALB access logs"
            if windowed
            else "check that the files are ALB access logs (space-separated, one entry per line)"
        ),
    )


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")


def analyze_alb_logs(
    source: str,
    *,
    since: str | None = None,
    until: str | None = None,
    out: str | Path | None = None,
    fail_on: list[str] | None = None,
    write: bool = True,
    s3_fetch: S3Fetch | None = None,
    gunicorn_timeout: float | None = None,
) -> Result:
    """Diagnose from ALB access logs alone (no load run): ALB- vs target-generated 5xx.

    ``gunicorn_timeout`` (seconds, default gunicorn's 30) tells a worker killed at the timeout
    from a keep-alive race.
    """
    thresholds = [th.parse(e) for e in fail_on or []]
    t_since, t_until = parse_when(since, name="--since"), parse_when(until, name="--until")
    if t_since is not None and t_until is not None and t_since >= t_until:
        raise AlbprobeError(f"--since {since} is not before --until {until}", hint="swap them")
    with tempfile.TemporaryDirectory(prefix="albprobe-alb-") as tmp:
        dest = Path(out) / "alb-logs" if out else Path(tmp)
        files = fetch_alb_logs(source, t_since, t_until, dest, s3_fetch=s3_fetch)
        ds = dataset.open_alb_logs(
            files, since=t_since, until=t_until, gunicorn_timeout=gunicorn_timeout
        )
        try:
            if not ds.present.get("alb_log"):
                raise _no_entries(source, ds.parse_stats["alb"], windowed=bool(since or until))
            figs, tl = correlate.compute(ds)
            v = verdict.decide(figs, context="alb-logs")
            res = Result(v, tl, breaches=th.evaluate(thresholds, figs), extra_tables=alb_tables(ds))
        finally:
            ds.close()
    if write:
        sub = f"{len(files)} ALB log file(s) from {source}"
        if t_since is not None or t_until is not None:
            sub += f" - window {_iso(t_since) if t_since else '...'} to {_iso(t_until) if t_until else '...'}"
        _write(
            res,
            Path(out) if out else Path("alb-report"),
            "ALB access logs",
            sub,
            {"alb_logs": source},
        )
    return res
