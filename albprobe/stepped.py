"""Every step of a tuning search in one Locust process: one `albprobe run` of the `rate-steps`
shape, driven step by step through its control channel (probes/loadgen/stepctl.py).

The search is adaptive (the next rate depends on the last step's result), so the parent chooses
each rate between two steps while the virtual users wait, connected and idle; no process starts
per step. The run itself goes through the runner's public entry point in the calling thread (so
Ctrl-C and SIGTERM end it in order, as any run); a driver thread asks for the steps, waits for
each answer (the step's rows are on disk by then) and hands the step's window to the caller.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from albprobe.runner import RunOptions, RunResult, execute
from analysis.capacity import StepWindow
from core.config import Config
from probes.loadgen import stepctl

NextRate = Callable[[], "float | None"]
OnStep = Callable[[Path, StepWindow], None]
# Per step, on top of its duration: users spawned before it, its last iterations after it.
_STEP_SLACK_S = stepctl.READY_S + stepctl.DRAIN_S + 5.0


@dataclass
class SteppedOptions:
    config: Config
    runs_root: Path
    run_id: str
    step_duration: float
    max_rate: float  # the highest rate the driver may ask for (the run's rate cap)
    max_steps: int


def stepped_config(opts: SteppedOptions) -> Config:
    """The run's config: an open model in one process, bounded by the most steps it may run."""
    cfg = opts.config
    load = dataclasses.replace(
        cfg.load,
        shape="constant-rate",  # the config's own shape; the run's shape is rate-steps
        rate=opts.max_rate,
        start_rate=opts.max_rate,
        end_rate=opts.max_rate,
        duration=opts.max_steps * (opts.step_duration + _STEP_SLACK_S) + 10.0,
        max_vus=min(cfg.load.max_vus, cfg.safety.max_users),
        workers=0,
    )
    return dataclasses.replace(cfg, load=load)


class _Driver(threading.Thread):
    """Asks for each step, waits for its answer, hands its window over; on the run's end without
    an answer (an abort, Ctrl-C) it keeps the step it was waiting for as ``cut``."""

    def __init__(
        self, opts: SteppedOptions, path: Path, next_rate: NextRate, on_step: OnStep
    ) -> None:
        super().__init__(name="albprobe-steps", daemon=True)
        self.opts, self.path = opts, path
        self.next_rate, self.on_step = next_rate, on_step
        self.over = threading.Event()  # the run has ended
        self.cut: tuple[float, float] | None = None  # (rate, asked at) of an unanswered step
        self.error: BaseException | None = None
        self.steps = 0  # answered
        self.asked = 0  # the last step asked for

    def _wait(self, ready: Callable[[], object]) -> object:
        while not self.over.is_set():
            got = ready()
            if got:
                return got
            time.sleep(stepctl.POLL_S)
        return ready()

    def run(self) -> None:
        index = 1
        try:
            # The run directory is the runner's to create: ask only once it exists.
            if not self._wait(lambda: (self.path / "run.json").exists()):
                return
            while index <= self.opts.max_steps and not self.over.is_set():
                rate = self.next_rate()
                if rate is None:
                    break
                asked = time.time()
                stepctl.ask(self.path, index, rate, self.opts.step_duration)
                self.asked = index
                done = self._wait(lambda i=index: stepctl.read_answer(self.path, i))
                if not isinstance(done, dict):
                    self.cut = (rate, asked)
                    return
                self.on_step(
                    self.path,
                    StepWindow(
                        run_id=f"{self.opts.run_id}/{index:02d}",
                        offered_rps=rate,
                        start=done["start"],
                        end=done["end"],
                        scheduled=int(done["scheduled"]),
                        dropped=int(done["dropped"]),
                    ),
                )
                self.steps += 1
                index += 1
        except BaseException as exc:  # handed to the caller's thread after the run
            self.error = exc
        if not self.over.is_set():
            # No more steps (after the one asked, if any): the run ends by itself.
            stepctl.ask(self.path, self.asked + 1, None)


def run_stepped(opts: SteppedOptions, next_rate: NextRate, on_step: OnStep) -> RunResult:
    """One Locust process for up to ``max_steps`` steps. ``next_rate()`` gives each step's rate
    (None: done) and ``on_step(run_dir, window)`` gets each finished step, both on the driver
    thread; a step the run's end cut short (abort rule, Ctrl-C) is handed over after the run,
    with the run's status."""
    path = opts.runs_root / opts.run_id
    driver = _Driver(opts, path.resolve(), next_rate, on_step)
    driver.start()
    try:
        result = execute(
            RunOptions(
                config=stepped_config(opts),
                shape=stepctl.SHAPE,
                runs_root=opts.runs_root,
                run_id=opts.run_id,
            )
        )
    finally:
        driver.over.set()
        driver.join()
    if driver.error is not None:
        raise driver.error
    if driver.cut is not None:
        rate, asked = driver.cut
        on_step(
            result.rundir.path,
            StepWindow(
                run_id=f"{opts.run_id}/{driver.steps + 1:02d}",
                offered_rps=rate,
                start=asked,
                end=time.time(),
                status=result.status if result.status != "complete" else "partial",
                status_reason=result.status_reason or "the run ended before the step did",
            ),
        )
    return result
