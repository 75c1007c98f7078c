"""Helpers for the CLI tests: the real ``mpreg`` command in a private ``MPREG_HOME``.

Every node a test starts is recorded there; :meth:`Shell.cleanup` stops them
and kills (and reports) any process the test saw that is still alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from mpreg.host import state

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(sys.executable).parent

SEED_RESULTS = (
    '{"first": "hi there!"}',
    '{"second": "hi there!"}',
    '{"|second": "hi there!", "|third": ["hi there!", "AND ME TOO"]}',
    '{"|third": ["hi there!", "hi there!", "AND ME TOO"]}',
    '{"|4th": ["hi there!", "hi there!", "AND ME TOO"]}',
)


def command(name: str = "mpreg") -> list[str]:
    """The installed console script, or the module behind it."""
    script = SCRIPTS / name
    if script.exists():
        return [str(script)]
    entry = {"mpreg": "main", "mpreg-server": "server_alias", "mpreg-client": "client_alias"}[name]
    return [sys.executable, "-c", f"from mpreg.cli import {entry}; {entry}()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(0.05)  # ok-sleep: polling, bounded by a deadline


def read_until(stream: IO[bytes], done: Callable[[str], bool], timeout: float) -> str:
    """Read a child's pipe until ``done(text so far)``; fail after ``timeout`` seconds."""
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not done(data.decode(errors="replace")):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"timed out after {timeout:g}s; read so far:\n{data!r}")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"the pipe closed; read:\n{data.decode(errors='replace')}")
            data += chunk
    return data.decode(errors="replace")


def gone(pids: set[int]) -> bool:
    return not any(state.pid_alive(pid) for pid in pids)


@dataclass
class Shell:
    """Runs mpreg commands with a private state directory; remembers every pid it saw."""

    home: Path
    cwd: Path
    seen: set[int] = field(default_factory=set)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MPREG_")}
        env.update(MPREG_HOME=str(self.home), COLUMNS="200", **extra)
        return env

    def run(
        self, *args: str, program: str = "mpreg", timeout: float = 45.0, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command(program), *args],
            cwd=self.cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, **kwargs: object) -> str:
        """Run a command that must succeed; its stdout."""
        proc = self.run(*args, **kwargs)  # type: ignore[arg-type]
        assert proc.returncode == 0, f"mpreg {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}"
        return proc.stdout

    def status(self, address: str = "") -> dict[str, object]:
        args = ["status", "--json", *(["--address", address] if address else [])]
        found: dict[str, object] = json.loads(self.ok(*args))
        self.seen |= cluster_pids(found)
        return found

    def records(self) -> list[state.NodeRecord]:
        found = state.list_records(prune=False)
        self.seen |= {r.pid for r in found}
        return found

    def cleanup(self) -> None:
        """Stop recorded nodes; fail if any process this test started is still alive.

        Every process started through this shell inherits its ``MPREG_HOME``,
        so a scan of /proc finds them all (pids seen along the way too).
        """
        records = state.list_records()
        if records:
            state.stop_nodes(records, grace=5.0)
        marker = f"MPREG_HOME={self.home}".encode()
        deadline = time.monotonic() + 10
        while started_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)  # ok-sleep: polling, bounded by a deadline
        leftover = {pid for pid in self.seen | started_with(marker) if state.pid_alive(pid)}
        for pid in leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not leftover, f"processes left behind: {sorted(leftover)}"


def started_with(marker: bytes) -> set[int]:
    """Live processes (not this one) whose environment holds ``marker`` (Linux)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir() if sys.platform == "linux" else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and state.pid_alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def cluster_pids(status: dict[str, object]) -> set[int]:
    """Every node and worker pid in a ``status --json`` document."""
    pids: set[int] = set()
    for node in status["nodes"]:  # type: ignore[attr-defined]
        if node["pid"]:  # null for a member that did not answer (dead, suspect)
            pids.add(node["pid"])
        pids |= {ep["pid"] for ep in node["endpoints"] if ep["pid"]}
    return pids


def private_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    """Fixture body: a Shell whose state (and this process's view of it) is tmp_path/home."""
    home = tmp_path / "home"
    monkeypatch.setenv("MPREG_HOME", str(home))
    for name in ("MPREG_TOKEN", "MPREG_ADDRESS", "MPREG_PORT", "MPREG_HOST"):
        monkeypatch.delenv(name, raising=False)
    shell = Shell(home, tmp_path)
    try:
        yield shell
    finally:
        shell.cleanup()


def seed_configs(tmp_path: Path) -> tuple[Path, Path, int, int]:
    """The shipped dev-1/dev-2 configs, copied with free ports substituted."""
    port1, port2 = free_port(), free_port()
    text1 = (ROOT / "dev-1.config.yaml").read_text().replace("7773", str(port1))
    text2 = (
        (ROOT / "dev-2.config.yaml")
        .read_text()
        .replace("7773", str(port1))
        .replace("6676", str(port2))
    )
    first, second = tmp_path / "dev-1.config.yaml", tmp_path / "dev-2.config.yaml"
    first.write_text(text1)
    second.write_text(text2)
    return first, second, port1, port2
