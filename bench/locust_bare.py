"""The baseline of bench_instrumented_user.py: a bare FastHttpUser sending the byte-identical
browser request (same headers as the albprobe user), with nothing judged, attributed or recorded.
The ratio thus measures albprobe's instrumentation, not the size of a browser's request."""

from locust import FastHttpUser, task

from probes.cors import CorsRequest, actual_headers

_HEADERS: dict[str, str] = {}


class BareUser(FastHttpUser):
    concurrency = 1

    def on_start(self) -> None:
        if not _HEADERS:
            req = CorsRequest(
                url=self.host.rstrip("/") + "/api/fast", origin="https://hakwonplus.com"
            )
            _HEADERS.update(actual_headers(req))

    @task
    def fetch(self) -> None:
        self.client.get("/api/fast", headers=dict(_HEADERS))
