"""Typed errors become one worded line and an exit code (no process, no parsing of text)."""

from __future__ import annotations

import argparse

import pytest

from mpreg.cli.output import run_guarded
from mpreg.errors import (
    AddressInUse,
    ConfigError,
    JoinFailed,
    ModuleLoadError,
    NodeStartError,
    UsageError,
)


def outcome(exc: BaseException, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    def handler(ns: argparse.Namespace) -> int:
        raise exc

    code = run_guarded(handler, argparse.Namespace())
    return code, capsys.readouterr().err


def test_a_port_in_use_is_worded_from_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    error = AddressInUse("any text at all", node="head", host="127.0.0.1", port=7773)
    code, err = outcome(error, capsys)
    assert code == 1
    assert err == (
        "mpreg: error: cannot start node 'head': port 7773 on 127.0.0.1 is already in use "
        "(another mpreg node? see `mpreg status`); choose another with --port\n"
    )


def test_a_failed_join_gives_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    error = JoinFailed("x", node="second", peers=("h:1",), reason="node h:1 did not answer")
    code, err = outcome(error, capsys)
    assert code == 1
    assert err.startswith("mpreg: error: node 'second' could not join the cluster: node h:1 did")


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (NodeStartError("node 'n' failed to start: boom", node="n"), 1, "node 'n' failed"),
        (UsageError("say what to start"), 2, "say what to start"),
        (ConfigError("f.yaml", "bad", 3), 2, "f.yaml:3: bad"),
        (ModuleLoadError("cannot import 'x'\n"), 1, "cannot import 'x'"),
        (OSError(13, "Permission denied", "/x"), 1, "Permission denied: /x"),
        (KeyboardInterrupt(), 130, ""),
    ],
)
def test_every_error_kind_has_its_exit_code(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, err = outcome(exc, capsys)
    assert got == code
    assert line in err
