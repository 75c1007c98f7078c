"""`mpreg token show|rotate` on a cluster started by the CLI, and the wrong-token error's words."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, command, private_shell, wait_until

from mpreg.protocol.credentials import fingerprint, read_only_credential

pytestmark = pytest.mark.cluster


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


def test_show_prints_a_fingerprint_and_rotate_updates_this_hosts_token_file(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "0")
    shell.records()
    token_file = shell.home / "token"
    old = token_file.read_text().strip()

    shown = shell.ok("token", "show")
    assert fingerprint(old) in shown and old not in shown
    assert shell.ok("token", "show", "--read-only").strip() == read_only_credential(old)

    # Rotated from "another host" (its own MPREG_HOME, the token given): the node
    # rewrites its host's file itself, and the command shows the new token once.
    elsewhere = {**shell.env(), "MPREG_HOME": str(shell.cwd / "elsewhere")}
    address = shell.records()[0].address
    args = ["token", "rotate", "--grace", "1", "--address", address, "--token", old]
    proc = subprocess.run(
        [*command(), *args], env=elsewhere, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    new = token_file.read_text().strip()
    assert new != old and f"{fingerprint(old)} -> {fingerprint(new)}" in proc.stdout
    assert f"shown once): {new}" in proc.stdout
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert fingerprint(new) in shell.ok("token", "show")

    out = shell.ok("token", "rotate", "--grace", "1")  # from here: the file is the source
    newer = token_file.read_text().strip()
    assert newer != new and newer not in out  # stored in this host's file: nothing shown
    old, new = new, newer

    # The stored (new) token works; the old one only until the grace ends.
    assert json.loads(shell.ok("status", "--json"))["nodes"]
    wait_until(lambda: shell.run("status", "--token", old).returncode == 1, 15, "old refused")
    refused = shell.run("status", "--token", old).stderr
    assert "this client's token" in refused and "does not match the cluster's token" in refused
    assert "read its token from --token" in refused
    reader = read_only_credential(new)
    assert json.loads(shell.ok("status", "--json", "--token", reader))["nodes"]


def test_a_wrong_token_from_the_environment_says_it_came_from_there(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "0")
    shell.records()
    proc = shell.run("status", MPREG_TOKEN="not-the-token")
    assert proc.returncode == 1
    assert "this client's token" in proc.stderr and "$MPREG_TOKEN" in proc.stderr
    assert "the node does not hold" not in proc.stderr


def test_a_read_only_credential_cannot_rotate(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "0")
    shell.records()
    reader = shell.ok("token", "show", "--read-only").strip()
    proc = shell.run("token", "rotate", "--token", reader)
    assert proc.returncode == 2 and "read-only" in proc.stderr
