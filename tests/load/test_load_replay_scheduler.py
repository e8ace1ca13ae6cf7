"""The replay's arrival scheduler (probes/loadgen/replay.py) without a network: a lane's lines go
to the user that took its first line, in order; a line that finds no idle user is dropped and
counted; the plan is read back in time order, split by lane between processes."""

from __future__ import annotations

import time

import gevent
import pyarrow as pa
import pyarrow.parquet as pq

from probes.loadgen.replay import Line, ReplayScheduler, read_lines


def _line(t: float, n: int, lane: int, last: bool) -> Line:
    return Line(t, n, "actual", "GET", f"/p{n}", None, "chromium", lane, last, None)


def _run(lines: list[Line], users: int) -> tuple[dict[int, int], ReplayScheduler]:
    """Run the scheduler with ``users`` users that send instantly; line -> user that sent it."""
    sched = ReplayScheduler(iter(lines))
    got: dict[int, int] = {}

    def user(u: int) -> None:
        while True:
            ln, queue = sched.next_slot()
            got[ln.line] = u
            while queue is not None and not ln.last:
                ln = queue.get()
                got[ln.line] = u

    greenlets = [gevent.spawn(user, u) for u in range(users)]
    gevent.sleep(0)  # the users wait for slots before the first is due
    sched.start()
    deadline = time.time() + 30
    while len(got) + sched.dropped < len(lines) and time.time() < deadline:
        gevent.sleep(0.01)
    gevent.killall(greenlets)
    sched.stop()
    return got, sched


def test_a_lane_stays_on_one_user_and_a_line_with_no_idle_user_is_dropped():
    t = time.time() + 0.05
    lanes = [(1, 7, False), (2, 8, True), (3, 7, False), (4, 9, True), (5, 7, True), (6, 10, True)]
    lines = [_line(t + i * 0.01, n, lane, last) for i, (n, lane, last) in enumerate(lanes)]
    got, sched = _run(lines, users=2)
    assert got[1] == got[3] == got[5]  # lane 7 on one user, in order
    assert got[2] != got[1] and got[4] == got[2]  # the other user serves the one-line lanes
    assert sched.scheduled == 6 and sched.dropped == 0
    # the same lines all late (due at once: the scheduler catches up), with one user
    late = [_line(t - 1 + i * 0.01, n, lane, last) for i, (n, lane, last) in enumerate(lanes)]
    got, sched = _run(late, users=1)
    # one user holds lane 7 until its last line: the lanes arriving meanwhile are dropped
    assert set(got) == {1, 3, 5, 6} and sched.dropped == 2
    assert sum(d for _, _, d in sched.drain_seconds(time.time() + 2)) == 2


def test_plan_is_read_in_order_and_split_by_lane(tmp_path):
    plan = tmp_path / "plan.parquet"
    pq.write_table(
        pa.table(
            {
                "offset_s": [0.0, 0.5, 1.0, 1.5],
                "line": [1, 2, 3, 4],
                "kind": ["preflight", "actual", "actual", "actual"],
                "method": ["OPTIONS", "GET", "PUT", "GET"],
                "path": ["/a", "/a", "/b", "/c"],
                "preflight_for": ["GET", None, None, None],
                "engine": ["firefox", "firefox", "chromium", "webkit"],
                "lane": [4, 4, 5, 6],
                "last_in_lane": [False, True, True, True],
                "target_ms": [None, 20.0, 5.0, None],
                "action": ["send", "send", "skip-write", "send"],
            }
        ),
        plan,
    )
    every = list(read_lines(plan, 100.0, 2.0))
    assert [(ln.line, ln.intended) for ln in every] == [(1, 100.0), (2, 100.25), (4, 100.75)]
    assert [ln.line for ln in read_lines(plan, 0, 1, index=0, processes=2)] == [1, 2, 4]
    assert [ln.line for ln in read_lines(plan, 0, 1, index=1, processes=2)] == []
