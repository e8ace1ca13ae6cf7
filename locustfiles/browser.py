"""A browser on the front-end origin calling the API: preflight when Chromium would, then the call.

    locust -f locustfiles/browser.py --host http://127.0.0.1:8080 --headless
    locust -f locustfiles/browser.py --host https://api.example.com --albprobe-config albprobe.toml

Every request is judged (CORS verdict) and attributed (proxy / server / app / network); Locust's
failures read like `502 proxy (no ACAO)`, and every request lands in the run directory.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, task

from locustfiles.shapes import AlbprobeShape  # noqa: F401  (Locust picks the shape up from here)
from probes.loadgen import plugin
from probes.loadgen.browser import BrowserCaller, prepare_endpoints
from probes.loadgen.plans import OPEN_MODEL, REPLAY
from probes.loadgen.tls import ssl_context

plugin.install()


class BrowserUser(FastHttpUser):
    # Browsers open a handful of connections per host; a sequential user needs one.
    concurrency = 1
    network_timeout = 120.0
    connection_timeout = 15.0
    # TLS is verified as a browser does, against [browser] ca_bundle (the testbed's CA) or the
    # system's CAs; read when the first connection to a host is made, after the config is loaded.
    insecure = False

    @staticmethod
    def ssl_context_factory(cafile: str | None = None):  # type: ignore[override]
        return ssl_context(plugin.session().config.browser.ca_bundle, cafile)

    def wait_time(self) -> float:
        s = plugin.session()
        load = s.config.load
        if s.shape in OPEN_MODEL or s.shape == REPLAY:
            return 0.0  # the arrival scheduler paces iterations
        if s.shape == "idle-gap":
            # Idle gaps straddling the backend keep-alive: the keep-alive race window.
            return max(0.0, random.uniform(load.gap - load.gap_jitter, load.gap + load.gap_jitter))
        return load.think_time

    def on_start(self) -> None:
        s = plugin.session()
        self._user_no = next(s.user_seq)
        b = s.config.browser
        self._endpoints = prepare_endpoints(
            self.host,
            s.config.endpoints,
            b.origin,
            b.credentials,
            b.force_preflight,
            b.auth_header_env,
        )
        self._caller = BrowserCaller(
            self.client,
            mode=b.cors_mode,
            cookie_env=b.cookie_env,
            fingerprints=s.config.fingerprints,
            acquire=s.limiter.acquire if s.limiter else None,
            user_id=self._user_no,
            worker_id=s.worker_id,
        )
        if s.shape == REPLAY:
            from probes.loadgen.replay import ReplayCaller

            self._replay = ReplayCaller(
                self.client,
                self.host,
                s.config,
                user_id=self._user_no,
                worker_id=s.worker_id,
                acquire=s.limiter.acquire if s.limiter else None,
                sleep_header=s.config.is_testbed,
            )

    @task
    def fetch(self) -> None:
        s = plugin.session()
        if s.shape == REPLAY:  # the log's lines, one lane at a time (probes/loadgen/replay.py)
            self._replay.run_lane(s.scheduler.next_slot())
            return
        intended = s.scheduler.next_slot() if s.scheduler is not None else None
        self._caller.call(s.pick_endpoint(self._endpoints), intended)
