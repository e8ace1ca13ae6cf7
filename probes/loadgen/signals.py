"""Ctrl-C and SIGTERM in a Locust process: one orderly stop, started where Locust expects it.

Python raises KeyboardInterrupt in whatever code runs when SIGINT arrives. Under gevent that is any
greenlet: a user's, between Locust's stats listener and the recorder (a request counted with no
row); or Locust's stats-history greenlet, which catches KeyboardInterrupt and ends quietly, so the
run goes on to the shape's end and is recorded as complete. And during a headless shape run Locust
installs no SIGTERM handler until the shape is over, so SIGTERM kills the process before its final
flush.

Here the signal is handled by the event loop instead, and becomes a KeyboardInterrupt thrown into
the main greenlet where it waits: Locust catches it there and stops in order (users stopped, final
worker reports, then `quit`, where the recorder writes its last rows). Once the process is on its
way out, further signals are ignored, so a second Ctrl-C cannot cut the final flush short.
"""

from __future__ import annotations

import signal
import sys
from typing import Any


class OrderlyStop:
    """The signal handlers of one Locust process (installed by the plugin at init)."""

    def __init__(self, environment: Any) -> None:
        import gevent

        self.stopping = False
        self._hub = gevent.get_hub()
        self._handlers = [gevent.signal_handler(signal.SIGINT, self._on_signal)]
        opts = environment.parsed_options
        headless = bool(getattr(opts, "headless", False)) and not getattr(opts, "worker", False)
        if headless:
            # Elsewhere Locust's own SIGTERM handler (an orderly shutdown) is in place from the
            # start; a second handler would run a second shutdown beside it.
            self._handlers.append(gevent.signal_handler(signal.SIGTERM, self._on_signal))
            # A headless run that stops (shape over, abort) goes on to quit by itself.
            environment.events.test_stopping.add_listener(self._on_way_out)
        environment.events.quitting.add_listener(self._on_way_out)

    def _on_way_out(self, **_kw: Any) -> None:
        self.stopping = True

    def _on_signal(self) -> None:
        if self.stopping:
            sys.stderr.write("albprobe: already stopping; writing the last rows\n")
            return
        self.stopping = True
        # Thrown from the loop, so the main greenlet gets it at its wait point, never mid-request.
        self._hub.loop.run_callback(self._hub.parent.throw, KeyboardInterrupt)
