"""The hints a started node prints match how mpreg was launched, and warn about an
environment that will not outlive the command."""

from __future__ import annotations

import sys

import pytest

from mpreg.cli.output import print_started
from mpreg.config import NodeConfig
from mpreg.host.state import NodeRecord

RECORD = NodeRecord(
    pid=4242,
    address="127.0.0.1:7773",
    node_id="head-aaaaaa",
    name="head",
    head=True,
    group=True,
    start_time=0,
    log="/tmp/head.log",
)


def test_launched_by_uv_run_the_hints_say_uv_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UV", "/usr/local/bin/uv")
    print_started(RECORD, NodeConfig())
    out = capsys.readouterr().out
    assert "uv run mpreg start --join 127.0.0.1:7773" in out
    assert "uv run mpreg status   (live: uv run mpreg top)" in out
    assert out.rstrip().endswith("uv run mpreg stop")


def test_launched_directly_the_hints_say_mpreg(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("UV", raising=False)
    print_started(RECORD, NodeConfig())
    out = capsys.readouterr().out
    assert "Add a node on this host:  mpreg start --join 127.0.0.1:7773" in out
    assert "uv run" not in out


def test_a_detached_node_from_a_temporary_environment_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "prefix", "/root/.cache/uv/builds-v0/.tmpAbCdEf")
    print_started(RECORD, NodeConfig())
    err = capsys.readouterr().err
    assert err.startswith("warning: this Python runs in a temporary environment")
    assert "uv add PACKAGE" in err
    print_started(RECORD, NodeConfig(), blocking=True)  # in the foreground it lasts as long
    assert capsys.readouterr().err == ""
