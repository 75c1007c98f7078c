"""``mpreg start`` with seeds (``--join A,B,C``, ``MPREG_JOIN``) and default node names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, free_port, private_shell
from test_cli_errors import one_line_error

from mpreg.config import default_node_name, short_hostname
from mpreg.transport.connection import parse_address

pytestmark = pytest.mark.cluster


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


def test_seeds_from_flag_and_environment_join_and_unnamed_nodes_get_distinct_names(
    shell: Shell,
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    # A head given seeds of which none answers founds the cluster.
    out = shell.ok("start", "--head", "--join", dead, "--port", "0", "--workers", "0")
    (head,) = shell.records()
    assert head.head
    assert head.name == default_node_name(parse_address(head.address)[1])
    assert f"mpreg node '{head.name}'" in out

    out = shell.ok("start", "--join", f"{dead},{head.address}", "--workers", "0")
    (second,) = [r for r in shell.records() if r.pid != head.pid]
    assert not second.head
    assert second.name == default_node_name(parse_address(second.address)[1])
    assert second.name != head.name

    shell.ok("start", "--name", "third", "--workers", "0", MPREG_JOIN=f"{dead}, {second.address}")
    status = shell.status(head.address)
    names = {n["node"]["name"] for n in status["nodes"]}  # type: ignore[attr-defined, index]
    assert names == {head.name, second.name, "third"}
    table = shell.ok("status")
    assert head.name in table and second.name in table


def test_when_no_seed_answers_every_one_is_named_with_its_reason(shell: Shell) -> None:
    dead = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    proc = shell.run("start", "--join", ",".join(dead), "--token", "t0k3n", "--workers", "0")
    line = one_line_error(proc, 1, "could not join the cluster", "no seed answered")
    for address in dead:
        assert f"{address} (connection refused)" in line
    assert shell.records() == []


def test_a_foreground_node_that_cannot_join_names_itself_and_the_seeds(shell: Shell) -> None:
    dead = f"127.0.0.1:{free_port()}"
    args = ("--log-level", "ERROR", "start", "--block", "--join", f"{dead},localhost:1")
    proc = shell.run(*args, "--port", "0", "--token", "t0k3n", "--workers", "0")
    line = one_line_error(proc, 1, "could not join the cluster", f"{dead} (connection refused)")
    assert "localhost:1 -> 127.0.0.1:1 (connection refused)" in line
    assert line.startswith(f"mpreg: error: node '{short_hostname()}-")  # named after its port
    assert shell.records() == []


def test_a_malformed_seed_is_a_usage_error(shell: Shell) -> None:
    proc = shell.run("start", "--join", "127.0.0.1:7773,host:notaport", "--token", "t")
    one_line_error(proc, 2, "bad --join address", "notaport")
    one_line_error(shell.run("start", "--join", " , ", "--token", "t"), 2, "--join needs")
