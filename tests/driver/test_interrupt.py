"""A notebook's interrupt button during a sync call: the call is cancelled in the cluster,
the driver goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import cluster_actors as ca
    import mpreg
    from mpreg import Command
    from mpreg.driver.sync_client import SyncClient
    from mpreg.driver.sync_lanes import SyncLanes

    cancel, lane_cancel = SyncClient._cancel, SyncLanes._cancel

    def reporting_cancel(self, conn, task_ids):
        print("cancel sent", sorted(task_ids), flush=True)
        cancel(self, conn, task_ids)

    def reporting_lane_cancel(self, lane, conn, call_id):  # the call went on a lane
        print("cancel sent", [call_id], flush=True)
        lane_cancel(self, lane, conn, call_id)

    SyncClient._cancel = reporting_cancel
    SyncLanes._cancel = reporting_lane_cancel

    mpreg.init(functions=[ca.add, ca.aslow_flagged], workers=2)
    assert mpreg.request([Command("a", "add", [1, 1])]) == {"a": 2}  # opens the sync connection
    start = time.monotonic()
    try:
        mpreg.request([Command("s", "aslow_flagged", [sys.argv[1], 60.0])])
        print("finished", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - start:.1f}s", flush=True)
    # The cancel reached the running coroutine in the cluster: it left its marker.
    deadline = time.monotonic() + 10
    while not os.path.exists(sys.argv[1] + ".cancelled") and time.monotonic() < deadline:
        time.sleep(0.01)  # ok-sleep: polling for the marker, bounded by a deadline
    print("cancelled in the cluster:", os.path.exists(sys.argv[1] + ".cancelled"), flush=True)
    print("then", mpreg.request([Command("a", "add", [20, 22])], timeout=10), flush=True)
    mpreg.shutdown()
    """
)


@pytest.mark.cluster
def test_an_interrupt_during_a_sync_request_cancels_it_and_the_connection_still_works(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "started"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(flag)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as driver:
        try:
            deadline = time.monotonic() + 30
            while not flag.exists():
                assert driver.poll() is None, driver.communicate()
                assert time.monotonic() < deadline, "the slow call never started"
                time.sleep(0.02)  # ok-sleep: polling for the flag file, bounded by a deadline
            driver.send_signal(signal.SIGINT)  # the driver is blocked reading its answer
            out, err = driver.communicate(timeout=30)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    assert driver.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "cancel sent [2]", out  # task 1 was the first add
    assert lines[1].startswith("interrupted after"), out
    assert lines[2] == "cancelled in the cluster: True", out
    assert lines[3] == "then {'a': 42}", out
