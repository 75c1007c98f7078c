"""Bad input to the CLI: one clear line on stderr and a non-zero exit, never a stack dump."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, free_port, private_shell

from mpreg.host import state

pytestmark = pytest.mark.cluster


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Assert the command failed with ``code`` and one stderr line holding every needle."""
    assert proc.returncode == code, (proc.returncode, proc.stderr, proc.stdout)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_an_unknown_flag_is_a_usage_error(shell: Shell) -> None:
    one_line_error(shell.run("start", "--head", "--bogus"), 2, "unrecognized arguments: --bogus")
    one_line_error(shell.run("frobnicate"), 2, "invalid choice")


def test_an_unknown_flag_before_the_command_is_named_not_the_missing_command(
    shell: Shell,
) -> None:
    line = one_line_error(shell.run("--bogus"), 2, "unrecognized arguments: --bogus")
    assert "COMMAND" not in line
    one_line_error(shell.run("--bogus", "status"), 2, "unrecognized arguments: --bogus")
    one_line_error(shell.run(), 2, "say which command", "start", "status", "top")


def test_start_without_a_mode_says_what_to_give(shell: Shell) -> None:
    one_line_error(shell.run("start"), 2, "--head", "--join", "--config")


def test_a_missing_config_file_is_named(shell: Shell, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    one_line_error(shell.run("start", "--config", str(missing)), 2, str(missing), "not found")


def test_a_malformed_config_file_gives_its_line(shell: Shell, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nport: 7773\nresources: [a, b\nhost: 127.0.0.1\n")
    one_line_error(shell.run("start", "--config", str(bad)), 2, f"{bad}:", "not valid YAML")
    bad.write_text("name: x\nprot: 7773\n")
    one_line_error(
        shell.run("start", "--config", str(bad)), 2, f"{bad}:2:", "unknown field 'prot'", "'port'"
    )
    bad.write_text("name: x\nport: seventy\n")
    one_line_error(shell.run("start", "--config", str(bad)), 2, f"{bad}:2:", "port number")


def test_a_config_file_naming_a_missing_module_gives_its_line(shell: Shell, tmp_path: Path) -> None:
    bad = tmp_path / "node.yaml"
    bad.write_text("name: x\nmodules: [nonexist.py]\n")
    one_line_error(
        shell.run("start", "--config", str(bad)), 2, f"{bad}:2:", "nonexist.py does not exist"
    )
    assert state.list_records() == []


def test_an_empty_config_file_is_refused(shell: Shell, tmp_path: Path) -> None:
    empty = tmp_path / "node.yaml"
    empty.write_text("# nothing here yet\n")
    one_line_error(shell.run("start", "--config", str(empty)), 2, f"{empty}: config file is empty")
    assert state.list_records() == []


def test_a_port_in_use_is_reported_and_nothing_is_left_running(shell: Shell) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = shell.run("start", "--head", "--port", str(port), "--workers", "1")
    one_line_error(proc, 1, f"port {port}", "already in use")
    assert state.list_records() == []


def test_a_join_address_that_does_not_answer_fails_the_start(shell: Shell) -> None:
    dead = f"127.0.0.1:{free_port()}"
    proc = shell.run("start", "--join", dead, "--token", "t0k3n", "--workers", "1")
    one_line_error(proc, 1, "could not join the cluster", dead)
    assert state.list_records() == []


def test_a_module_that_fails_to_import_shows_its_traceback(shell: Shell, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import mpreg\n\ndef helper():\n    raise RuntimeError('boom at import')\n\nhelper()\n"
    )
    proc = shell.run("start", "--head", "--port", "0", "--workers", "1", "--module", str(broken))
    assert proc.returncode == 1
    assert proc.stderr.startswith("mpreg: error: ")
    assert "cannot import" in proc.stderr
    assert "Traceback" in proc.stderr  # the user's traceback, not ours
    assert "RuntimeError: boom at import" in proc.stderr
    assert 'broken.py", line 6' in proc.stderr
    assert state.list_records() == []


def test_a_module_file_that_does_not_exist_is_a_usage_error(shell: Shell) -> None:
    one_line_error(shell.run("start", "--head", "--module", "nowhere.py"), 2, "nowhere.py")


def test_status_with_nothing_running_says_how_to_start(shell: Shell) -> None:
    one_line_error(shell.run("status"), 1, "no mpreg cluster is running", "mpreg start --head")


def test_a_second_head_on_the_same_host_is_refused(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "0")
    shell.records()
    one_line_error(shell.run("start", "--head", "--port", "0"), 2, "already runs", "--join")


def test_joining_without_a_token_says_where_to_get_one(shell: Shell) -> None:
    one_line_error(shell.run("start", "--join", "127.0.0.1:7773"), 2, "no cluster token")


CONNECTING = (
    ("status",),
    ("top", "--once"),
    ("call", "echo", "1"),
    ("client", "run"),
)


@pytest.mark.parametrize("args", CONNECTING, ids=lambda args: args[0])
def test_no_token_anywhere_says_so_and_where_to_get_one(shell: Shell, args: tuple[str]) -> None:
    address = f"127.0.0.1:{free_port()}"  # never dialled: the token is missing first
    where = ["--address", address] if args[0] != "client" else []
    positional = [address] if args[0] == "client" else []
    proc = shell.run(args[0], *positional, *args[1:], *where)
    line = one_line_error(proc, 2, "no cluster token found", "--token", "MPREG_TOKEN")
    assert str(shell.home / "token") in line
    assert "mpreg start --head" in line
    assert "does not hold" not in line


def test_no_token_with_a_local_cluster_running_says_so(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "0")
    (head,) = shell.records()
    token = (shell.home / "token").read_text().strip()
    (shell.home / "token").unlink()
    for args in CONNECTING:
        one_line_error(shell.run(*args), 2, "no cluster token found")
    assert head.name in shell.ok("status", "--token", token)
    assert head.name in shell.ok("status", MPREG_TOKEN=token)


def test_a_wrong_token_is_an_authentication_error(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "0")
    shell.records()
    proc = shell.run("status", "--token", "not-the-token")
    one_line_error(proc, 1, "token")


def test_a_bad_address_is_a_usage_error(shell: Shell) -> None:
    one_line_error(shell.run("status", "--address", "host:notaport"), 2, "bad address")


def test_a_function_that_raises_shows_the_remote_error(shell: Shell, tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(
        "import mpreg\n\n@mpreg.function\ndef explode(x):\n    raise ValueError(f'bad {x}')\n"
    )
    shell.ok("start", "--head", "--port", "0", "--workers", "1", "--module", "failing.py")
    shell.records()
    proc = shell.run("call", "explode", "7")
    assert proc.returncode == 1
    assert "raised ValueError: bad 7" in proc.stderr.splitlines()[0]
    proc = shell.run("call", "no_such_function")
    one_line_error(proc, 1, "no_such_function")
