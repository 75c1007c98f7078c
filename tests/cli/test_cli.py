"""The real ``mpreg`` command line, end to end: real processes, real sockets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import (
    SEED_RESULTS,
    Shell,
    cluster_pids,
    command,
    gone,
    private_shell,
    read_until,
    seed_configs,
    wait_until,
)

from mpreg.cli import parse_value
from mpreg.host import state


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


MODULE_A = """
import mpreg

@mpreg.actor(datasets=["alpha"])
class Alpha:
    def __init__(self):
        self.scale = 10

    def score(self, x):
        return ("alpha", x * self.scale)
"""

MODULE_B = """
import mpreg

@mpreg.actor(datasets=["beta"], replicas=2)
class Beta:
    def score(self, x):
        return ("beta", x + 1)

@mpreg.function
def shout(text):
    return text.upper()
"""


@pytest.mark.cluster
def test_seed_demo_runs_through_the_cli_and_stop_leaves_nothing(
    shell: Shell, tmp_path: Path
) -> None:
    dev1, dev2, port1, port2 = seed_configs(tmp_path)
    assert "serves at" in shell.ok("start", "--config", str(dev1))
    shell.ok("start", "--config", str(dev2))
    status = shell.status(f"127.0.0.1:{port1}")
    names = {n["node"]["name"] for n in status["nodes"]}  # type: ignore[index]
    assert names == {"PRIMARY SERVER", "ATTACHED SERVER"}

    out = shell.ok("client", f"127.0.0.1:{port1}", "run")
    seed_style = shell.ok(f"ws://127.0.0.1:{port2}", "run", program="mpreg-client")
    for result in SEED_RESULTS:
        assert result in out
        assert result in seed_style

    pids = {r.pid for r in shell.records()} | cluster_pids(status)
    assert len(pids) >= 6  # two nodes, two function workers each
    assert "stopped 2 nodes" in shell.ok("stop")
    wait_until(lambda: gone(pids), 10, "every mpreg process to exit")
    assert state.list_records() == []
    assert "no mpreg nodes" in shell.ok("stop")


@pytest.mark.cluster
def test_head_and_join_with_two_modules_route_by_dataset(shell: Shell, tmp_path: Path) -> None:
    (tmp_path / "mod_a.py").write_text(MODULE_A)
    (tmp_path / "mod_b.py").write_text(MODULE_B)
    out = shell.ok("start", "--head", "--port", "0", "--workers", "1", "--module", "mod_a.py")
    head = state.read_local_cluster().address
    assert f"mpreg start --join {head}" in out
    assert 'mpreg.init("auto")' in out
    token_file = shell.home / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600

    out = shell.ok(
        "start", "--join", head, "--name", "second", "--workers", "1", "--module", "mod_b"
    )
    joined = next(r.address for r in shell.records() if not r.head)

    status = shell.status()
    nodes = status["nodes"]
    assert {n["node"]["address"] for n in nodes} == {head, joined}  # type: ignore[index]
    actors = [ep for n in nodes for ep in n["endpoints"] if ep["kind"] == "actor"]  # type: ignore[index]
    assert sorted(ep["label"] for ep in actors) == ["Alpha", "Beta", "Beta"]

    for address in (head, joined):
        a = shell.ok("call", "score", "4", "--dataset", "alpha", "--address", address)
        b = shell.ok("call", "score", "4", "--dataset", "beta", "--address", address)
        assert json.loads(a) == ["alpha", 40]
        assert json.loads(b) == ["beta", 5]
    assert json.loads(shell.ok("call", "shout", "hi there", "--address", head)) == "HI THERE"

    table = shell.ok("status")
    head_name = next(r.name for r in shell.records() if r.head)
    for word in (head_name, "second", "Alpha", "Beta", "alpha", "beta", "SERVER"):
        assert word in table
    frame = shell.ok("top", "--once", "--interval", "0.2")
    for word in ("calls/s", "p99 ms", "memory", "Alpha", "second"):
        assert word in frame


@pytest.mark.cluster
def test_demo_prints_every_seed_result_and_the_dataset_dag(shell: Shell) -> None:
    proc = shell.run("demo", timeout=50)
    assert proc.returncode == 0, proc.stderr
    for result in SEED_RESULTS:
        assert result in proc.stdout
    for word in ("|london-jul", "|sydney-jul", "|gap", "London", "Sydney", "demo-1", "demo-2"):
        assert word in proc.stdout
    assert '"|warmest": "cairo"' in proc.stdout
    assert "Traceback" not in proc.stderr


def _driver(shell: Shell, code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=shell.cwd,
        env=shell.env(),
        stdout=subprocess.PIPE,
        text=True,
    )


EMBEDDED_DRIVER = """
    import json, time, mpreg
    from mpreg import Command
    mpreg.init(workers=1)
    status = mpreg.cluster_status()
    pids = [n.pid for n in status.nodes] + [e.pid for e in status.endpoints]
    result = mpreg.request([Command("a", "echo", [1], [])])
    print(json.dumps({"pids": pids, "r": result}), flush=True)
    if WAIT:
        time.sleep(60)  # ok-sleep: the driver script waits here to be killed
"""


@pytest.mark.parametrize("ending", ["exit", "kill -9"])
@pytest.mark.cluster
def test_init_embedded_cluster_ends_with_its_driver(shell: Shell, ending: str) -> None:
    code = EMBEDDED_DRIVER.replace("WAIT", str(ending != "exit"))
    with _driver(shell, code) as driver:
        try:
            assert driver.stdout is not None
            line = json.loads(driver.stdout.readline())
            assert line["r"] == {"a": 1}
            pids = set(line["pids"])
            shell.seen |= pids
            assert len(pids) >= 2
            if ending == "kill -9":
                driver.send_signal(signal.SIGKILL)
            assert driver.wait(timeout=30) in (0, -signal.SIGKILL)
        finally:
            if driver.poll() is None:
                driver.kill()
    wait_until(lambda: gone(pids), 15, "the embedded cluster to exit")


@pytest.mark.cluster
def test_init_auto_and_a_plain_address_find_the_started_cluster(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "1")
    address = state.read_local_cluster().address
    with _driver(
        shell,
        f"""
        import mpreg
        from mpreg import Command
        mpreg.init("auto")
        print(mpreg.request([Command("x", "echos", ["auto", 1], [])]))
        mpreg.shutdown()
        mpreg.init("tcp://{address}")
        print(mpreg.request([Command("x", "echo", ["addressed"], [])]))
        """,
    ) as driver:
        out, _ = driver.communicate(timeout=30)
    assert driver.returncode == 0
    assert "{'x': ['auto', 1]}" in out
    assert "{'x': 'addressed'}" in out


@pytest.mark.cluster
def test_block_runs_in_the_foreground_and_stops_cleanly_on_sigterm(
    shell: Shell, tmp_path: Path
) -> None:
    dev1, _, port1, _ = seed_configs(tmp_path)
    with subprocess.Popen(
        [*command("mpreg-server"), "--config", str(dev1), "start"],
        cwd=shell.cwd,
        env=shell.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            assert f"serves at 127.0.0.1:{port1}" in server.stdout.readline()
            pids = cluster_pids(shell.status()) | {server.pid}
            assert [r.pid for r in shell.records()] == [server.pid]
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=20) == 0
        finally:
            if server.poll() is None:
                server.kill()
    wait_until(lambda: gone(pids), 10, "the node's workers to exit")
    assert state.list_records() == []


FOOTER = "Ctrl-C quits."


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.cluster
def test_top_into_a_pipe_prints_a_frame_per_interval_and_stops_cleanly(
    shell: Shell, stop: signal.Signals
) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "1", "--name", "solo")
    shell.records()
    with subprocess.Popen(
        [*command(), "top", "--interval", "0.2"],
        cwd=shell.cwd,
        env=shell.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as top:
        try:
            assert top.stdout is not None
            first = read_until(top.stdout, lambda text: FOOTER in text, 20)
            top.send_signal(stop)
            rest, err = top.communicate(timeout=20)
        finally:
            if top.poll() is None:
                top.kill()
    assert top.returncode == 0, err
    assert err == b"", err
    frame = first.split(FOOTER)[0]
    for needle in ("mpreg top", "1 node (", "solo", "(functions)", "p99 ms"):
        assert needle in frame
    assert "\x1b[" not in first  # plain text: no cursor moves, no colours
    assert (first + rest.decode()).count("mpreg top") >= 1


@pytest.mark.cluster
def test_top_into_a_pipe_keeps_printing_frames(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "1")
    shell.records()
    with subprocess.Popen(
        [*command(), "top", "--interval", "0.2"],
        cwd=shell.cwd,
        env=shell.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as top:
        try:
            assert top.stdout is not None
            frames = read_until(top.stdout, lambda text: text.count(FOOTER) >= 3, 20)
            top.terminate()
            top.communicate(timeout=20)
        finally:
            if top.poll() is None:
                top.kill()
    assert top.returncode == 0
    later = frames.split(FOOTER)[2]  # the first frame has no rates yet; later ones do
    assert "mpreg top" in later
    assert "…" not in later.split("Actors and workers")[1]


def test_call_arguments_are_json_where_they_parse() -> None:
    assert parse_value("3") == 3
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value('"3"') == "3"
    assert parse_value("hi there") == "hi there"
    assert parse_value("first") == "first"
    assert parse_value("null") is None
