"""Deploying by value to a cluster of two CLI-started nodes, from drivers run as scripts.

Each driver is a subprocess whose classes and functions live in its
``__main__``, as a notebook's would: they can only reach the nodes by value.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, private_shell, wait_until

from mpreg.host import state

pytestmark = pytest.mark.cluster

DRIVER_TIMEOUT = 90.0


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    """Two nodes started with ``mpreg start`` (head and one joined), stopped after."""
    for two in private_shell(tmp_path, monkeypatch):
        two.ok("start", "--head", "--port", "0", "--workers", "1", "--name", "first")
        head = state.read_local_cluster().address
        two.ok("start", "--join", head, "--name", "second", "--workers", "1")
        nodes = two.status()["nodes"]
        assert len(nodes) == 2  # type: ignore[arg-type]
        yield two


def run_driver(shell: Shell, body: str) -> dict[str, object]:
    """Run ``body`` as a driver's ``__main__``; the JSON it prints last."""
    script = "import json, mpreg\nfrom mpreg import Command\n" + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=shell.cwd,
        env=shell.env(),
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def labels(shell: Shell) -> list[str]:
    """The label of every endpoint in the cluster, as ``mpreg status --json`` shows them."""
    nodes = shell.status()["nodes"]
    return sorted(ep["label"] for n in nodes for ep in n["endpoints"])  # type: ignore[attr-defined]


REDEPLOY = """
import threading, time

def until(predicate, what):
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)  # ok-sleep: polling, bounded by a deadline

class Iris:
    def __init__(self, version):
        self.version = version

    def which(self):
        return self.version

def triple(x):
    return 3 * x

mpreg.init("auto")
first = mpreg.deploy(Iris, datasets=["iris"], args=(1,))
owners = sorted({e.split("/")[0] for e in first.endpoints})
WHICH = [Command("w", "which", [], ["iris"])]
before = [mpreg.request(WHICH)["w"] for _ in range(20)]

class Iris:  # edited in the notebook: a new version of the same name
    def __init__(self, version):
        self.version = version * 10

    def which(self):
        return self.version + 1

calls, failures, stop, switched = [], [], threading.Event(), threading.Event()

def keep_calling():
    while not stop.is_set():
        after = switched.is_set()
        try:
            calls.append((after, mpreg.request(WHICH)["w"]))
        except Exception as exc:
            failures.append(repr(exc))

caller = threading.Thread(target=keep_calling)
caller.start()
until(lambda: len(calls) >= 20 or failures, "calls before the switch")
second = mpreg.deploy(Iris, datasets=["iris"], args=(2,))
switched.set()
until(lambda: sum(1 for after, _ in calls if after) >= 50 or failures, "calls after it")
stop.set()
caller.join()
fn = mpreg.deploy(triple)
tripled = mpreg.request([Command("t", "triple", [14])])["t"]
def iris_labels():
    return sorted(e.label for e in mpreg.cluster_status().endpoints if e.label.startswith("Iris"))

until(lambda: iris_labels() == ["Iris v2", "Iris v2"], "the old version to stop")
status_labels = sorted(e.label for e in mpreg.cluster_status().endpoints)
mpreg.undeploy(fn)
try:
    mpreg.request([Command("t", "triple", [1])])
    after_undeploy = "still served"
except mpreg.UnknownFunctionError:
    after_undeploy = "unknown"
mpreg.undeploy("Iris")
try:
    mpreg.request(WHICH)
    iris_after = "still served"
except mpreg.UnknownFunctionError:
    iris_after = "unknown"
print(json.dumps(dict(
    owners=owners, before=sorted(set(before)), versions=[first.version, second.version],
    during=sorted({v for _, v in calls}), after=sorted({v for a, v in calls if a}),
    failures=failures, tripled=tripled, fn_endpoints=len(fn), labels=status_labels,
    after_undeploy=after_undeploy, iris_after=iris_after,
)))
"""


def test_deploy_redeploy_and_undeploy_a_main_class_and_function(shell: Shell) -> None:
    out = run_driver(shell, REDEPLOY)
    assert len(out["owners"]) == 2  # type: ignore[arg-type]  # one replica on each node
    assert out["before"] == [1]
    assert out["versions"] == [1, 2]
    assert out["failures"] == []  # no failed call during the switch
    assert out["after"] == [21]  # every call issued after the switch: the new version
    assert set(out["during"]) <= {1, 21}  # type: ignore[arg-type]
    assert out["tripled"] == 42
    assert out["fn_endpoints"] == 2
    # The old version drained and stopped; status names the version.
    assert [x for x in out["labels"] if x.startswith("Iris")] == ["Iris v2", "Iris v2"]  # type: ignore[union-attr]
    assert out["after_undeploy"] == "unknown"
    assert out["iris_after"] == "unknown"
    wait_until(lambda: not [x for x in labels(shell) if x.startswith(("Iris", "triple"))], 15)


BROKEN = """
class Broken:
    def __init__(self):
        raise RuntimeError("dataset file missing")

    def ping(self):
        return "pong"

class HalfBroken:  # the first replica to start serves, the second raises
    def __init__(self):
        import os
        os.close(os.open("half.marker", os.O_CREAT | os.O_EXCL))

    def ping(self):
        return "pong"

class Placed:
    def where(self):
        return "here"

mpreg.init("auto")
placed = mpreg.deploy(Placed, nodes=["second"], replicas=2)
try:
    mpreg.deploy(Placed, nodes=["nowhere"])
    unknown = None
except mpreg.PlanError as exc:
    unknown = str(exc)
try:
    mpreg.deploy(HalfBroken, replicas=2)
    half = None
except mpreg.RemoteError as exc:
    half = exc.exc_type
half_left = [e.label for e in mpreg.cluster_status().endpoints if e.label.startswith("Half")]
try:
    mpreg.deploy(Broken, datasets=["b"])
    print(json.dumps({"raised": None}))
except mpreg.RemoteError as exc:
    left = [e.label for e in mpreg.cluster_status().endpoints if e.label.startswith("Broken")]
    print(json.dumps({
        "raised": exc.exc_type, "traceback": exc.remote_traceback, "left": left,
        "placed": sorted(e.split("/")[0].rsplit("-", 1)[0] for e in placed), "unknown": unknown,
        "half": half, "half_left": half_left,
    }))
"""


def test_a_deploy_whose_init_raises_gives_its_traceback_and_leaves_nothing(shell: Shell) -> None:
    # (The same driver places a deployment by node name first.)
    out = run_driver(shell, BROKEN)
    assert out["raised"] == "RuntimeError"
    assert "dataset file missing" in str(out["traceback"])
    assert "__init__" in str(out["traceback"])
    assert out["left"] == []
    assert (out["half"], out["half_left"]) == ("FileExistsError", [])  # its good twin stopped
    assert out["placed"] == ["second", "second"]  # nodes= by member name
    assert "nowhere" in str(out["unknown"])


INIT_DEPLOYS = """
class Iris:
    def which(self):
        return "iris"

def triple(x):
    return 3 * x

mpreg.init("auto", actors=[Iris], functions=[triple])
out = mpreg.request([Command("w", "which", []), Command("t", "triple", [5])])
print(json.dumps(out))
"""


def test_init_auto_with_actors_and_functions_deploys_them(shell: Shell) -> None:
    assert run_driver(shell, INIT_DEPLOYS) == {"w": "iris", "t": 15}
    # Owned by that driver: gone once it exited.
    wait_until(lambda: not [x for x in labels(shell) if x.startswith(("Iris", "triple"))], 15)


LIVES = """
import sys

class Owned:
    def owned(self):
        return 1

class Kept:
    def kept(self):
        return 2

mpreg.init("auto")
mpreg.deploy(Owned)
mpreg.deploy(Kept, detached=True)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("ending", ["exit", "kill -9"])
def test_owned_deployments_end_with_their_driver_detached_ones_stay(
    shell: Shell, ending: str
) -> None:
    body = "import mpreg\n" + textwrap.dedent(LIVES)
    with subprocess.Popen(
        [sys.executable, "-c", body],
        cwd=shell.cwd,
        env=shell.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as driver:
        try:
            assert driver.stdout is not None and driver.stdin is not None
            assert driver.stdout.readline().strip() == b"ready"
            assert labels(shell).count("Owned v1") == 2
            if ending == "exit":
                driver.stdin.close()
            else:
                driver.kill()
            driver.wait(30)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    wait_until(lambda: "Owned v1" not in labels(shell), 20, "the owned deployment to end")
    assert labels(shell).count("Kept v1") == 2
    stopped = run_driver(
        shell,
        """
        mpreg.init("auto")
        mpreg.undeploy("Kept")
        print(json.dumps({"ok": True}))
        """,
    )
    assert stopped == {"ok": True}
    assert "Kept v1" not in labels(shell)


DRAINS = """
import asyncio

class Slow:  # async: its worker would stop it mid-call if told to exit
    async def nap(self, seconds):
        await asyncio.sleep(seconds)  # ok-sleep: a call still running when it is undeployed
        return "rested"

mpreg.init("auto")
mpreg.deploy(Slow, replicas=1)
running = mpreg.submit("nap", 1.0)
mpreg.undeploy("Slow")
print(json.dumps({"answer": mpreg.get(running, timeout=30)}))
"""


def test_undeploy_lets_the_calls_in_flight_finish(shell: Shell) -> None:
    assert run_driver(shell, DRAINS) == {"answer": "rested"}
    assert not [x for x in labels(shell) if x.startswith("Slow")]
