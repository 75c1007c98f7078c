"""Node logs end to end: junk connections, rotation, JSON lines, actor output, ``mpreg logs``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, command, private_shell, read_until, wait_until

from mpreg.host import state
from mpreg.host.logs import actor_dir
from mpreg.transport.connection import parse_address


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


MODULE = """
import mpreg

@mpreg.actor(datasets=["t"])
class Talker:
    def say(self, text):
        print("Talker says", text)
        return text

@mpreg.function
def boom(x):
    raise ValueError(f"boom {x}")
"""

JUNK = b"GET / HTTP/1.1\r\nHost: mpreg\r\n\r\n"


def _start(shell: Shell, *args: str, **env: str) -> state.NodeRecord:
    shell.ok("start", "--head", "--port", "0", *args, **env)
    (record,) = shell.records()
    return record


async def _junk(address: str, count: int, sources: list[str], concurrency: int = 32) -> None:
    """Open ``count`` connections that send bytes that are not mpreg; each waits for the hang-up."""
    host, port = parse_address(address)
    todo = iter(range(count))

    async def one_by_one() -> None:
        for i in todo:
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(sources[i % len(sources)], 0)
            )
            writer.write(JUNK)
            # The node closes on the junk (a reset if our bytes were unread: refused all the same).
            with contextlib.suppress(ConnectionResetError):
                await reader.read()
            writer.close()

    await asyncio.gather(*(one_by_one() for _ in range(concurrency)))


def _log_text(record: state.NodeRecord) -> str:
    return Path(record.log).read_text(errors="replace")


@pytest.mark.cluster
@pytest.mark.timeout(150)
def test_30000_junk_connections_add_at_most_100_kb_to_the_log(shell: Shell) -> None:
    record = _start(shell, "--workers", "0")
    log = Path(record.log)
    wait_until(lambda: "listening on" in log.read_text(), 10, "the node's first log line")
    before = log.stat().st_size
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(_junk(record.address, 30_000, ["127.0.0.1"]), 120))
    took = time.monotonic() - started
    # The window's summary comes at its end (10 s): wait for it, so it is counted too.
    with contextlib.suppress(AssertionError):
        wait_until(lambda: "refused in the last 10 s" in log.read_text(), 15, "the summary")
    grown = log.stat().st_size - before
    assert grown <= 100_000, f"30,000 junk connections wrote {grown:,} bytes in {took:.1f}s"
    text = _log_text(record)
    assert "connection from 127.0.0.1 refused (not mpreg)" in text
    assert "connections from 127.0.0.1 refused in the last 10 s (not mpreg: " in text
    shell.status()  # it still serves


@pytest.mark.cluster
def test_a_node_log_past_its_size_bound_rotates(shell: Shell) -> None:
    record = _start(shell, "--workers", "0", MPREG_LOG_MAX_BYTES="4000", MPREG_LOG_BACKUPS="2")
    log = Path(record.log)
    # Each source host is logged in full 5 times per window: 40 of them say enough.
    sources = [f"127.0.0.{n}" for n in range(2, 42)]
    asyncio.run(asyncio.wait_for(_junk(record.address, 200, sources, concurrency=8), 30))
    wait_until(lambda: Path(f"{log}.2").is_file(), 10, "two rotations")
    assert not Path(f"{log}.3").exists()
    assert log.stat().st_size <= 4000
    for path in (log, Path(f"{log}.1")):
        assert "refused (not mpreg)" in path.read_text()
    shell.status()  # it still serves, and logs into the new file
    assert "127.0.0.41" in log.read_text() + Path(f"{log}.1").read_text()


@pytest.mark.cluster
def test_json_log_lines_name_the_node_and_a_failed_task_s_request(
    shell: Shell, tmp_path: Path
) -> None:
    (tmp_path / "talk.py").write_text(MODULE)
    record = _start(shell, "--workers", "1", "--module", "talk.py", "--log-format", "json")
    assert shell.run("call", "boom", "3").returncode == 1
    log = Path(record.log)
    wait_until(lambda: "boom 3" in log.read_text(), 10, "the failed task's line")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(line["node"] == record.name for line in lines[1:]), lines
    (failed,) = [line for line in lines if "boom 3" in line["msg"]]
    assert failed["msg"] == "task '<mpreg call boom>' failed: ValueError: boom 3"
    assert failed["level"] == "INFO"
    assert isinstance(failed["request_id"], int) and failed["request_id"] > 0
    assert failed["logger"] == "mpreg.node.session"


@pytest.mark.cluster
def test_mpreg_logs_shows_an_actor_s_prints_and_the_node_s_log_and_follows(
    shell: Shell, tmp_path: Path
) -> None:
    (tmp_path / "talk.py").write_text(MODULE)
    record = _start(shell, "--workers", "1", "--module", "talk.py", "--name", "talkers")
    assert json.loads(shell.ok("call", "say", "hello", "--dataset", "t")) == "hello"
    printed = actor_dir(Path(record.log)) / "Talker.log"
    assert printed.read_text() == "Talker says hello\n"  # unbuffered: there once it returned

    assert shell.ok("logs", "Talker") == "Talker says hello\n"
    node_log = shell.ok("logs", record.name)
    assert f"node={record.name}" in node_log and "listening on" in node_log
    assert "Talker says" not in node_log
    assert shell.ok("logs", "-n", "1", record.name).count("\n") == 1
    missing = shell.run("logs", "Nobody")
    assert missing.returncode == 2 and "Talker" in missing.stderr

    with subprocess.Popen(
        [*command(), "logs", "Talker", "-f"],
        cwd=shell.cwd,
        env=shell.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as follower:
        try:
            assert follower.stdout is not None
            read_until(follower.stdout, lambda text: "Talker says hello" in text, 15)
            shell.ok("call", "say", "again", "--dataset", "t")
            read_until(follower.stdout, lambda text: "Talker says again" in text, 15)
            follower.send_signal(signal.SIGTERM)
            assert follower.wait(10) == 0
        finally:
            if follower.poll() is None:
                follower.kill()
    # Once the node stopped, its files are still found by its name and its actor's.
    shell.ok("stop")
    assert "listening on" in shell.ok("logs", "talkers")
    assert shell.ok("logs", "Talker") == "Talker says hello\nTalker says again\n"
