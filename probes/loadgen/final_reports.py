"""A master that quits only once its workers' final reports are in.

Locust's master sends `quit` to its workers, waits a fixed 0.5 s for their final stats reports,
then stops listening. A worker answers `quit` with a final report (the rows and requests since its
last one) and then a `quit` message of its own, on the same ordered connection. On a busy machine
that answer takes longer than 0.5 s, and the final report is lost: to the run's rows (or, in
worker-parts mode, to the manifest, while the part itself is still written) and to Locust's count
alike, so the two still agree and nothing shows the loss.

`install` replaces the master's `quit` with one that waits for each connected worker's `quit`
message (so every report it sent before is in) for at most FINAL_REPORT_WAIT_S. A worker the
master already counts as missing is not waited for.
"""

from __future__ import annotations

import time
from typing import Any

FINAL_REPORT_WAIT_S = 15.0
_POLL_S = 0.05


def install(runner: Any, wait_s: float = FINAL_REPORT_WAIT_S) -> None:
    """Make ``runner.quit`` (a Locust MasterRunner's) wait for the workers' final reports."""
    quitting = False

    def quit() -> None:
        nonlocal quitting
        # Locust's message loop calls quit() again when the last worker leaves: the outer call
        # is already on its way out.
        if quitting:
            return
        quitting = True
        import gevent
        from locust.rpc import Message
        from locust.runners import STATE_MISSING

        runner.stop(send_stop_to_client=False)
        for client in list(runner.clients.values()):
            runner.server.send_to_client(Message("quit", None, client.id))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(
            c.state != STATE_MISSING for c in runner.clients.values()
        ):
            gevent.sleep(_POLL_S)
        runner.greenlet.kill(block=True)

    runner.quit = quit
