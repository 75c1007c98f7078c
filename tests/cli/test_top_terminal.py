"""``mpreg top`` on a real terminal (a private tmux server): a loaded two-node cluster, keys."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_support import Shell, command, private_shell, read_until

TMUX = shutil.which("tmux")

HEAD_MODULE = """
import mpreg

@mpreg.actor(datasets=["alpha"])
class Alpha:
    def score(self, x):
        return x * 10
"""

JOINED_MODULE = """
import mpreg

@mpreg.actor(datasets=["beta"], replicas=2)
class Beta:
    def score(self, x):
        return x + 1
"""

# Calls both actors until killed; says "loaded" once the first calls came back.
LOAD = """
import sys
import mpreg
from mpreg import Command

mpreg.init(sys.argv[1])
n = 0
while True:
    mpreg.request([Command("a", "score", [n], ["alpha"]), Command("b", "score", [n], ["beta"])])
    if n == 0:
        print("loaded", flush=True)
    n += 1
"""


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


class Tmux:
    """One private tmux server (its own socket), one session, one pane."""

    def __init__(self, env: dict[str, str]) -> None:
        assert TMUX is not None
        self.socket = f"mpreg-top-{uuid.uuid4().hex[:12]}"
        self.env = env
        # Where the pane's shell writes top's exit status (read by ended()).
        self.exit_file = Path(tempfile.gettempdir()) / f"{self.socket}.status"

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(
            [TMUX, "-L", self.socket, "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert proc.returncode == 0, f"tmux {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def start(self, argv: list[str], width: int = 160, height: int = 50) -> None:
        # remain-on-exit keeps the pane after the program ends, to read its exit status.
        self(
            "new-session", "-d", "-s", "top", "-x", str(width), "-y", str(height),
            shlex.join(argv), ";", "set-option", "-t", "top", "remain-on-exit", "on",
        )  # fmt: skip

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "top")

    def wait(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}:\n{text}")
            time.sleep(0.1)  # ok-sleep: polling the pane, bounded by a deadline

    def kill(self) -> None:
        self.exit_file.unlink(missing_ok=True)
        subprocess.run(
            [TMUX, "-L", self.socket, "kill-server"], env=self.env, capture_output=True, timeout=10
        )


def run_top(tmux: Tmux, shell: Shell) -> None:
    """``mpreg top`` in the pane, then the terminal's modes (``stty -a``) once it has ended."""
    top = shlex.join(["env", f"MPREG_HOME={shell.home}", *command(), "top"])
    done = shlex.quote(str(tmux.exit_file))
    # The shell catches Ctrl-C (its children still get it) so it lives on to run stty,
    # and writes top's exit status to a file: tmux's own record of it proved unreliable.
    tmux.start(["sh", "-c", f"trap : INT; {top}; code=$?; stty -a; echo $code > {done}"])


def ended(tmux: Tmux) -> tuple[int, str]:
    """Wait for the pane's program to end: its exit status and the last screen."""
    deadline = time.monotonic() + 10
    while not (written := _read(tmux.exit_file)).endswith("\n"):
        assert time.monotonic() < deadline, f"top did not end:\n{tmux.screen()}"
        time.sleep(0.05)  # ok-sleep: polling for the status file, bounded by a deadline
    screen = tmux.wait(lambda s: "icanon" in s, 5, "stty's output")
    return int(written), screen


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def assert_cooked(screen: str) -> None:
    """The terminal reads lines and echoes again (``stty -a`` after top)."""
    modes = screen[screen.rindex("speed") :]
    assert re.search(r"(?<![-\w])icanon\b", modes), modes
    assert re.search(r"(?<![-\w])echo\b", modes), modes


def calls_per_s(screen: str) -> float:
    """The cluster-wide calls/s in the summary line (0 while unknown)."""
    found = re.search(r"calls/s: ([0-9.]+)", screen)
    return float(found.group(1)) if found else 0.0


def actor_rows(screen: str) -> str:
    return screen[screen.index("Actors and workers") :] if "Actors and workers" in screen else ""


@pytest.mark.cluster
@pytest.mark.timeout(120)
@pytest.mark.skipif(TMUX is None, reason="needs tmux")
def test_top_on_a_terminal_shows_the_loaded_cluster_and_answers_keys(shell: Shell) -> None:
    (shell.cwd / "head_actors.py").write_text(HEAD_MODULE)
    (shell.cwd / "joined_actors.py").write_text(JOINED_MODULE)
    shell.ok("start", "--head", "--port", "0", "--name", "first", "--module", "head_actors.py")
    head = shell.records()[0].address
    shell.ok("start", "--join", head, "--name", "second", "--module", "joined_actors.py")
    shell.records()

    env = {k: v for k, v in shell.env().items() if k not in ("COLUMNS", "LINES")}
    load = subprocess.Popen(
        [sys.executable, "-c", LOAD, head],
        cwd=shell.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    tmux = Tmux({k: v for k, v in env.items() if k != "MPREG_HOME"})
    try:
        assert load.stdout is not None
        read_until(load.stdout, lambda text: "loaded" in text, 60)
        run_top(tmux, shell)
        tmux.wait(lambda s: "mpreg top" in s, 30, "the first frame")
        # From the first frame, rates need a second sample: within 3 s, both nodes,
        # every actor and the calls/s of the load.
        screen = tmux.wait(
            lambda s: calls_per_s(s) > 0 and "second" in s and "Beta" in s,
            3,
            "non-zero calls/s",
        )
        for needle in (
            "first",
            "second",
            "Alpha",
            "Beta",
            "2 alive, 0 suspect, 0 dead",
            "sort: name",
        ):
            assert needle in screen
        assert re.search(r"Beta\s.*1/2", screen) and re.search(r"Beta\s.*2/2", screen)

        tmux("send-keys", "-t", "top", "s")
        screen = tmux.wait(lambda s: "sort: calls/s" in s, 5, "the sort to change")
        assert "sorted by calls/s" in screen

        tmux("send-keys", "-t", "top", "f", "b", "e", "t")
        tmux.wait(lambda s: "filter: bet" in s, 5, "the filter prompt")
        tmux("send-keys", "-t", "top", "a", "Enter")
        screen = tmux.wait(
            lambda s: "filter: beta" in s and "Alpha" not in actor_rows(s), 5, "the filter"
        )
        assert actor_rows(screen).count("Beta") == 2

        tmux("send-keys", "-t", "top", "?")
        tmux.wait(lambda s: "show or hide these keys" in s, 5, "the keys")

        tmux("send-keys", "-t", "top", "q")
        status, screen = ended(tmux)
        assert status == 0, screen
        assert_cooked(screen)
    finally:
        tmux.kill()
        load.kill()
        load.communicate(timeout=10)  # waits, and closes its pipe


@pytest.mark.cluster
@pytest.mark.timeout(90)
@pytest.mark.skipif(TMUX is None, reason="needs tmux")
def test_ctrl_c_ends_top_with_0_and_gives_the_terminal_back(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "1", "--name", "solo")
    shell.records()
    tmux = Tmux({k: v for k, v in shell.env().items() if k not in ("COLUMNS", "MPREG_HOME")})
    try:
        run_top(tmux, shell)
        tmux.wait(lambda s: "sort: name" in s, 30, "the first frame")
        tmux("send-keys", "-t", "top", "f", "x")  # in the middle of typing a filter
        tmux.wait(lambda s: "filter: x" in s, 5, "the filter prompt")
        tmux("send-keys", "-t", "top", "C-c")
        status, screen = ended(tmux)
        assert status == 0, screen
        assert_cooked(screen)
        assert "solo" in screen  # the last frame stays
    finally:
        tmux.kill()
