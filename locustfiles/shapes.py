"""The load shape Locust runs: a thin wrapper over probes.loadgen.plans (pure, tested there)."""

from __future__ import annotations

from locust import LoadTestShape

from probes.loadgen import plugin
from probes.loadgen.plans import make_plan


class AlbprobeShape(LoadTestShape):
    """step / spike / soak / idle-gap / users / constant-rate / ramping-rate / rate-steps, per
    the config or --albprobe-shape; stops by itself at load.duration (rate-steps: earlier, when
    its parent asks for no more steps)."""

    use_common_options = False
    _plan = None

    def tick(self):
        s = plugin.session()
        if s.shape_finished:  # rate-steps: the parent asked for no more steps
            return None
        if self._plan is None:
            self._plan = make_plan(s.shape, s.config.load, s.config.safety.max_users)
        step = self._plan(plugin.load_elapsed(self.get_run_time()))
        if step is None:
            plugin.session().shape_finished = True
        return step
