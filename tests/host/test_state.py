"""The per-user state directory: token file, node records, stopping recorded nodes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpreg.errors import ClusterUnavailable
from mpreg.host import state


def record(
    pid: int, *, head: bool = True, group: bool = False, **fields: object
) -> state.NodeRecord:
    start_time = state.process_start_time(pid) or 0
    values: dict[str, object] = {
        "pid": pid,
        "address": f"127.0.0.1:{1000 + pid % 1000}",
        "node_id": f"n-{pid}",
        "name": f"n{pid}",
        "head": head,
        "group": group,
        "start_time": start_time,
        "started_at": time.time(),
    }
    values.update(fields)
    return state.NodeRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes standing in for nodes; each is killed and reaped at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def spawn(procs: list[subprocess.Popen[bytes]], code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE
    )
    procs.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.stdout.close()
    return proc


def test_reading_state_never_creates_the_directory(home: Path) -> None:
    assert state.read_token() is None
    assert state.list_records() == []
    assert state.default_token() is None
    assert not home.exists()


def test_the_token_file_is_private(home: Path) -> None:
    path = state.write_token("s3cret")
    assert path == home / "token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert home.stat().st_mode & 0o777 == 0o700
    assert state.read_token() == "s3cret"


def test_token_precedence_is_explicit_then_env_then_stored(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.write_token("stored")
    assert state.default_token() == "stored"
    monkeypatch.setenv("MPREG_TOKEN", "from-env")
    assert state.default_token() == "from-env"
    assert state.default_token("given") == "given"


@pytest.mark.cluster
def test_records_of_live_processes_are_listed_and_stale_ones_pruned(home: Path) -> None:
    live = record(os.getpid())
    state.write_record(live)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    state.write_record(record(int(dead.stdout), start_time=1))
    reused = record(os.getppid(), start_time=12345)  # a live pid, but not the process we started
    state.write_record(reused)
    assert state.list_records() == [live]
    assert sorted(p.name for p in (home / "nodes").iterdir()) == [f"{os.getpid()}.json"]


def test_read_local_cluster_prefers_the_head_and_explains_when_nothing_runs(home: Path) -> None:
    with pytest.raises(ClusterUnavailable, match="mpreg start --head"):
        state.read_local_cluster()
    state.write_token("tok")
    state.write_record(record(os.getppid(), head=False, address="127.0.0.1:2"))
    state.write_record(record(os.getpid(), head=True, address="127.0.0.1:1"))
    found = state.read_local_cluster()
    assert (found.address, found.token) == ("127.0.0.1:1", "tok")


@pytest.mark.cluster
def test_stop_nodes_terminates_then_kills_the_stubborn_with_their_group(
    home: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    # Children that wait to be stopped: the sleeps are what is stopped.
    waits = "import time; time.sleep(60)"  # ok-sleep
    polite = spawn(sleepers, f"print('ready', flush=True); {waits}")
    stubborn = spawn(
        sleepers,
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"child = subprocess.Popen([sys.executable, '-c', {waits!r}])\n"
        "print('ready', flush=True)\n"
        f"{waits}\n",
    )
    records = [record(polite.pid, group=True), record(stubborn.pid, group=True)]
    for r in records:
        state.write_record(r)
    started = time.monotonic()
    # The grace must outlast a SIGTERM'd process's exit on a loaded 2-core
    # machine, or the polite one gets killed too (it flaked at 0.3 s).
    killed = state.stop_nodes(state.list_records(), grace=2.0)
    assert time.monotonic() - started < 8
    assert [r.pid for r in killed] == [stubborn.pid]
    assert polite.wait(timeout=5) == -15
    assert stubborn.wait(timeout=5) == -9
    assert state.list_records() == []
    # The stubborn one's child was in its process group: gone too.
    group_members = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _pgid(pid) == stubborn.pid
    ]
    assert group_members == []


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid) if state.pid_alive(pid) else None
    except ProcessLookupError:
        return None


def test_a_rotation_replaces_this_hosts_token_only_if_it_held_the_old_one(home: Path) -> None:
    state.write_token("old")
    assert not state.follow_rotation("another-clusters", "new")
    assert state.read_token() == "old"
    assert state.follow_rotation("old", "new")
    assert state.read_token() == "new"
    assert oct(state.token_path().stat().st_mode & 0o777) == "0o600"


def test_the_token_source_names_the_environment_or_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert state.token_source("given") == ""
    assert state.token_source(None) == str(state.token_path())
    monkeypatch.setenv("MPREG_TOKEN", "x")
    assert state.token_source(None) == "$MPREG_TOKEN"
