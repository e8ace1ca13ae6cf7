"""The `rate-steps` shape: one Locust process runs many open-model steps, one at a time, each at a
rate its parent chose after the previous step (what `albprobe tune` needs: the search is adaptive).

The control channel is a pair of files per step in <run dir>/locust/steps/, each written whole
(write, then rename):

* the parent asks: ``ask-NN.json`` = ``{"rate": 12.5, "duration": 4}``, or ``{"stop": true}``;
* the Locust process answers once the step is over, its in-flight iterations have finished (or
  ``DRAIN_S`` passed) and its rows are on disk: ``done-NN.json`` = the step's window (its
  intended send times, ``start`` to ``end``) and its scheduled and dropped iterations.

Between steps the virtual users stay connected and idle; no process starts or stops.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from probes.loadgen.arrival import intended_times

SHAPE = "rate-steps"
POLL_S = 0.02
DRAIN_S = 10.0  # at most this long for the last iterations of a step to finish
READY_S = 10.0  # at most this long for the virtual users to be spawned before a step


def step_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "locust" / "steps"


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ask(run_dir: Path, index: int, rate: float | None, duration: float = 0.0) -> None:
    """The parent's request for step ``index`` (1-based); ``rate`` None ends the run."""
    body = {"stop": True} if rate is None else {"rate": float(rate), "duration": float(duration)}
    _write(step_dir(run_dir) / f"ask-{index:02d}.json", body)


def read_ask(run_dir: Path, index: int) -> dict[str, Any] | None:
    return _read(step_dir(run_dir) / f"ask-{index:02d}.json")


def answer(run_dir: Path, index: int, window: dict[str, Any]) -> None:
    _write(step_dir(run_dir) / f"done-{index:02d}.json", window)


def read_answer(run_dir: Path, index: int) -> dict[str, Any] | None:
    return _read(step_dir(run_dir) / f"done-{index:02d}.json")


class SteppedTimes:
    """Intended send times for the arrival scheduler, step by step as the parent asks (Locust
    side, in a greenlet: it waits with gevent). ``waiting`` counts the users idle in the
    scheduler, ``users`` the users spawned; ``flush`` puts the recorded rows on disk."""

    def __init__(
        self,
        run_dir: Path,
        *,
        users: Callable[[], int],
        expected_users: int,
        waiting: Callable[[], int],
        counts: Callable[[], tuple[int, int]],
        flush: Callable[[], None],
        on_stop: Callable[[], None],
        deadline: float,
    ) -> None:
        self.run_dir = run_dir
        self.users, self.expected_users, self.waiting = users, expected_users, waiting
        self.counts, self.flush, self.on_stop = counts, flush, on_stop
        self.deadline = deadline

    def _until(self, done: Callable[[], bool], limit: float) -> None:
        import gevent

        end = min(time.time() + limit, self.deadline)
        while not done() and time.time() < end:
            gevent.sleep(POLL_S)

    def __iter__(self) -> Iterator[float]:
        import gevent

        index = 1
        while time.time() < self.deadline:
            cmd = read_ask(self.run_dir, index)
            if cmd is None:
                gevent.sleep(POLL_S)
                continue
            if cmd.get("stop"):
                break
            # Every virtual user spawned and idle: a step starts with its whole pool.
            self._until(lambda: self.waiting() >= self.expected_users, READY_S)
            rate, duration = float(cmd["rate"]), float(cmd["duration"])
            scheduled0, dropped0 = self.counts()
            start = time.time()
            yield from intended_times(start, duration, rate, rate)
            gevent.sleep(max(0.0, start + duration - time.time()))
            self._until(lambda: self.waiting() >= self.users(), DRAIN_S)
            in_flight = max(0, self.users() - self.waiting())
            self.flush()
            scheduled, dropped = self.counts()
            answer(
                self.run_dir,
                index,
                {
                    "index": index,
                    "rate": rate,
                    "start": start,
                    "end": start + duration,
                    "answered_at": time.time(),
                    "scheduled": scheduled - scheduled0,
                    "dropped": dropped - dropped0,
                    "in_flight": in_flight,  # still running after DRAIN_S: not in the rows
                },
            )
            index += 1
        self.on_stop()
