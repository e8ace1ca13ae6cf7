"""The replay's sender inside Locust: the plan's lines handed to browser users at the logged times.

It is the open model of probes/loadgen/arrival.py with the log's arrivals: ``ReplayScheduler``
runs the plan (streamed from its Parquet file, never read whole) and hands each line to an idle
user at its intended time; with no user idle, the line is a dropped iteration, counted. The lines
of one lane (one client:port of the log: one browser connection) stay in order on one user: the
user that takes a lane's first line gets the lane's later lines from a queue of its own until the
lane's last line, so they go on its keep-alive connection. A lane's line that finds its user still
busy waits for it and is late, measured from its intended time like every request.

``ReplayCaller`` sends one line as one exchange through the browser user's own BrowserCaller (a
preflight line as the preflight, with the configured origin), so every response is judged and
attributed and recorded as in `albprobe run`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Endpoint
from core.replay import ENGINE_MODES, SLEEP_HEADER, WRITE_METHODS
from probes.loadgen.arrival import ArrivalScheduler
from probes.loadgen.browser import (
    BrowserCaller,
    PreparedEndpoint,
    close_idle_connections,
    prepare_endpoints,
)

_BATCH = 8192
_PREPARED_MAX = 2048  # distinct (kind, method, path) kept prepared per user


@dataclass(slots=True)
class Line:
    intended: float  # epoch seconds
    line: int
    kind: str
    method: str
    path: str
    preflight_for: str | None
    engine: str
    lane: int
    last: bool
    target_ms: float | None


def read_lines(
    plan: Path, start: float, speed: float, *, index: int = 0, processes: int = 1
) -> Iterator[Line]:
    """The plan's sent lines of this process's lanes (lane % processes == index), in time order,
    read one batch at a time."""
    import pyarrow.parquet as pq

    cols = [
        "offset_s",
        "line",
        "kind",
        "method",
        "path",
        "preflight_for",
        "engine",
        "lane",
        "last_in_lane",
        "target_ms",
        "action",
    ]
    pf = pq.ParquetFile(plan)
    for batch in pf.iter_batches(batch_size=_BATCH, columns=cols):
        d = batch.to_pydict()
        for i, action in enumerate(d["action"]):
            if action != "send" or d["lane"][i] % processes != index:
                continue
            yield Line(
                start + d["offset_s"][i] / speed,
                d["line"][i],
                d["kind"][i],
                d["method"][i],
                d["path"][i],
                d["preflight_for"][i],
                d["engine"][i],
                d["lane"][i],
                d["last_in_lane"][i],
                d["target_ms"][i],
            )


class ReplayScheduler(ArrivalScheduler):
    """The arrival scheduler over plan lines; users get (line, lane queue or None)."""

    def __init__(self, lines: Iterator[Line]) -> None:
        super().__init__(iter(()))
        self._lines = lines
        self._lanes: dict[int, Any] = {}  # lane -> the queue of the user that has it

    def _slots(self) -> Iterator[tuple[float, Any]]:
        return ((ln.intended, ln) for ln in self._lines)

    def _hand(self, ln: Line) -> bool:
        import gevent.queue

        owner = self._lanes.get(ln.lane)
        if owner is not None:  # the lane's user: in order on its connection, late if it is busy
            if ln.last:
                del self._lanes[ln.lane]
            owner.put(ln)
            return True
        # The lane's first line (or the first after a dropped one): any idle user takes the lane.
        queue = None if ln.last else gevent.queue.Queue()
        if not super()._hand((ln, queue)):
            return False
        if queue is not None:
            self._lanes[ln.lane] = queue
        return True


class ReplayCaller:
    """One browser user's replay: a BrowserCaller per engine, sharing the user's connection."""

    def __init__(
        self,
        session: Any,
        base_url: str,
        config: Any,
        *,
        user_id: int | None,
        worker_id: str,
        acquire: Any,
        sleep_header: bool,
    ) -> None:
        self._session = session
        self._base = base_url
        self._cfg = config
        self._kw = dict(
            cookie_env=config.browser.cookie_env,
            fingerprints=config.fingerprints,
            acquire=acquire,
            user_id=user_id,
            worker_id=worker_id,
        )
        self._callers: dict[str, BrowserCaller] = {}
        self._prepared: dict[tuple[str, str, str], PreparedEndpoint] = {}
        self._sleep_header = sleep_header
        self._bodies: Mapping[str, str] = config.replay.bodies

    def _caller(self, engine: str) -> BrowserCaller:
        mode = ENGINE_MODES.get(engine, self._cfg.browser.cors_mode)
        c = self._callers.get(mode)
        if c is None:
            c = self._callers[mode] = BrowserCaller(self._session, mode=mode, **self._kw)
        return c

    def _endpoint(self, ln: Line) -> PreparedEndpoint:
        method = (ln.preflight_for or "GET") if ln.kind == "preflight" else ln.method
        key = (ln.kind, method, ln.path)
        ep = self._prepared.get(key)
        if ep is not None:
            return ep
        if len(self._prepared) >= _PREPARED_MAX:
            # The callers' memos are keyed by request identity: forget them with the requests.
            for c in self._callers.values():
                c.forget()
            self._prepared.clear()
        writes = method in WRITE_METHODS
        body = self._bodies.get(ln.path.split("?", 1)[0]) if writes else None
        b = self._cfg.browser
        endpoint = Endpoint(
            name=f"replay {method}",
            path=ln.path,
            method=method,
            headers={"Content-Type": "application/json"} if writes else {},
            body=body if ln.kind == "actual" else None,
        )
        ep = self._prepared[key] = prepare_endpoints(
            self._base, [endpoint], b.origin, b.credentials, False, b.auth_header_env
        )[0]
        return ep

    def send(self, ln: Line) -> None:
        extra = (
            {SLEEP_HEADER: f"{ln.target_ms:.0f}"}
            if self._sleep_header and ln.kind == "actual" and ln.target_ms
            else None
        )
        self._caller(ln.engine).send(self._endpoint(ln), ln.kind, ln.intended, extra)

    def run_lane(self, slot: tuple[Line, Any]) -> None:
        """Send a lane's lines in order: the first now, the others as the scheduler hands them."""
        ln, queue = slot
        try:
            self.send(ln)
            while queue is not None and not ln.last:
                ln = queue.get()
                self.send(ln)
        finally:
            # The log's next client:port is another TCP connection: this user's next lane must
            # not ride on this one (connection reuse is what a keep-alive race needs).
            close_idle_connections(self._session, self._base)
