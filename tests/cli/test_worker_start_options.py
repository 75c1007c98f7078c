"""When a node's function workers start: ``--eager-workers`` / ``--lazy-workers``,
``MPREG_EAGER_WORKERS``; ``mpreg start`` defaults to eager."""

from __future__ import annotations

import pytest

from mpreg.cli.commands import _apply_options
from mpreg.cli.parser import parse
from mpreg.config import NodeConfig, eager_workers_default
from mpreg.errors import UsageError


def _eager(*flags: str) -> bool:
    return _apply_options(NodeConfig(), parse(["start", "--head", *flags])).eager_workers


def test_mpreg_start_starts_function_workers_with_the_node_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MPREG_EAGER_WORKERS", raising=False)
    assert _eager() is True
    assert _eager("--lazy-workers") is False
    assert _eager("--eager-workers") is True


def test_the_environment_chooses_unless_a_flag_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPREG_EAGER_WORKERS", "0")
    assert _eager() is False
    assert _eager("--eager-workers") is True
    monkeypatch.setenv("MPREG_EAGER_WORKERS", "yes")
    assert _eager() is True
    monkeypatch.setenv("MPREG_EAGER_WORKERS", "sometimes")
    with pytest.raises(UsageError, match="MPREG_EAGER_WORKERS"):
        _eager()


def test_both_flags_at_once_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse(["start", "--head", "--eager-workers", "--lazy-workers"])


def test_the_default_applies_when_the_environment_is_silent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MPREG_EAGER_WORKERS", "")
    assert eager_workers_default(False) is False
    assert eager_workers_default(True) is True


def test_a_config_files_choice_holds_unless_the_environment_or_a_flag_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MPREG_EAGER_WORKERS", raising=False)
    lazy = NodeConfig(eager_workers=False)  # as `eager_workers: false` in the YAML
    assert _apply_options(lazy, parse(["start", "--head"])).eager_workers is False
    assert _apply_options(lazy, parse(["start", "--head", "--eager-workers"])).eager_workers
    monkeypatch.setenv("MPREG_EAGER_WORKERS", "1")
    assert _apply_options(lazy, parse(["start", "--head"])).eager_workers is True
