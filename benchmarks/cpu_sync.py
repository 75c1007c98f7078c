"""CPU per call through the sync facade (``mpreg.submit``/``mpreg.get``, ``mpreg.request``).

Used by ``python -m benchmarks.cpu_per_call``: a one-node cluster with one
function worker started by this process (``benchmarks.cluster.ThreadCluster``),
this process connected to it with ``mpreg.init(address, token=...)`` as a
user's script is. The driver's CPU is split by thread: the caller's (main)
thread, the sync facade's loop thread (``mpreg-client``), and the rest (the
cluster's own loop thread here, which does nothing while calls run).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU of a process (or one of its threads) so far, from /proc."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def loop_thread_ids() -> list[int]:
    """Kernel thread ids of the sync facade's loop thread(s), named ``mpreg-client``.

    Python does not give the kernel its thread names, so they come from ``threading``.
    """
    return [t.native_id for t in threading.enumerate() if t.name == "mpreg-client" and t.native_id]


@dataclass(frozen=True, slots=True)
class Measured:
    """Calls/s and CPU seconds per call by process (and the driver's threads)."""

    rate: float
    per_call: dict[str, float]


def _measure(calls: int, run: Callable[[int], None], pids: dict[str, int]) -> Measured:
    me = os.getpid()
    main_tid = me  # the main thread's id is the process id
    loop_tids = loop_thread_ids()
    assert loop_tids, "no mpreg-client thread: is mpreg.init() done?"

    def snapshot() -> dict[str, float]:
        snap = {name: cpu_seconds(pid) for name, pid in pids.items()}
        snap["driver: caller thread"] = cpu_seconds(me, main_tid)
        snap["driver: mpreg-client loop thread"] = sum(cpu_seconds(me, t) for t in loop_tids)
        return snap

    before = snapshot()
    started = time.perf_counter()
    run(calls)
    elapsed = time.perf_counter() - started
    after = snapshot()
    return Measured(calls / elapsed, {k: (after[k] - before[k]) / calls for k in before})


def measure_sync(
    calls: int,
    in_flight: int,
    which: tuple[str, ...] = ("submit", "request"),
    *,
    lanes: bool = True,
) -> dict[str, Measured]:
    """``submit``: batches of ``in_flight`` x ``mpreg.submit("echo", i)`` then ``mpreg.get``;
    ``request``: ``mpreg.request`` of one command, one after another (calls / 4 of them)."""
    import mpreg
    from benchmarks.cluster import ThreadCluster
    from mpreg import Command
    from mpreg.testing import node

    def submit_batches(n: int) -> None:
        for base in range(0, n, in_flight):
            todo = range(base, min(base + in_flight, n))
            assert mpreg.get([mpreg.submit("echo", i) for i in todo]) == list(todo)

    def requests(n: int) -> None:
        for i in range(n):
            assert mpreg.request([Command("e", "echo", [i])])["e"] == i

    with ThreadCluster(node("cpu", workers=1)) as cluster:
        mpreg.init(cluster.address, token=cluster.token, lanes=lanes)
        try:
            worker = mpreg.cluster_status().endpoints[0].pid
            assert worker
            pids = {"driver": os.getpid(), "node": cluster.node_pid, "worker": worker}
            submit_batches(min(2000, calls))  # warm-up
            requests(200)
            out = {}
            if "submit" in which:
                out["sync submit/get"] = _measure(calls, submit_batches, pids)
            if "request" in which:
                out["sync request"] = _measure(max(1, calls // 4), requests, pids)
            return out
        finally:
            mpreg.shutdown()
