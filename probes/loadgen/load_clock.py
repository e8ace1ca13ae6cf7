"""When a distributed run's duration starts counting: once every worker is ready to load.

Locust's master times its shape from its own test start, when it sends the workers their first
users. A worker then runs its test-start work (albprobe's: the master's settings, and in
worker-parts mode its parts writer, which for s3:// imports boto3 and checks the bucket) before
its users start. On a busy machine, or with workers on slow machines, that took the whole of a
short run, and the run recorded nothing from that worker. So albprobe's master counts the
duration from the moment every connected worker has said it is ready (a `WORKER_READY` message
sent at the end of its test start), or from WORKER_READY_WAIT_S after the test start at the
latest, so that a worker stuck in its start cannot hold a run open forever.

A local (single-process) run's duration counts from its test start, as before.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

WORKER_READY = "albprobe_worker_ready"  # Locust custom message: worker -> master
WORKER_READY_WAIT_S = 30.0


@dataclass
class LoadClock:
    """The duration's clock of one master: zero until the workers are ready, then running."""

    began_at: float | None = None

    def elapsed(
        self,
        now: float,
        since_test_start: float,
        connected: Collection[str],
        ready: Collection[str],
        wait_s: float = WORKER_READY_WAIT_S,
    ) -> float:
        """Seconds of the duration gone at ``now``. ``connected``: the workers the master
        counts on (missing ones excluded); ``ready``: those that said they are ready."""
        if self.began_at is None:
            all_ready = bool(connected) and all(c in ready for c in connected)
            if not all_ready and since_test_start < wait_s:
                return 0.0
            self.began_at = now
        return now - self.began_at
